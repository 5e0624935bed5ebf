package validate_test

import (
	"errors"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee/validate"
)

type nopPublisher struct{}

func (nopPublisher) Publish(string, ...*message.Message) error { return nil }
func (nopPublisher) Close() error                              { return nil }

func Example() {
	reg, err := validate.Compile(map[string][]byte{
		"sms.send": []byte(`{"type":"object","required":["to"],"properties":{"to":{"type":"string","pattern":"^\\+[0-9]+$"}}}`),
	})
	if err != nil {
		panic(err)
	}
	pub := reg.Publisher(nopPublisher{})
	err = pub.Publish("sms.send", message.NewMessage("m1", []byte(`{"to":"0151"}`)))
	fmt.Println(err)

	err = reg.Validate("sms.send", []byte(`{"to":`))
	var ve *validate.Error
	fmt.Println(errors.As(err, &ve), ve.ErrorClass(), ve.ValidationErrors())
	// Output:
	// levee/validate: refused to publish 1 invalid message(s) to sms.send; message m1: /to (/properties/to/pattern): '0151' does not match pattern '^\\+[0-9]+$'
	// true validation [/: malformed JSON: unexpected EOF]
}
