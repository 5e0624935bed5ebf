package dedup_test

import (
	"errors"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/dedup"
)

// The same message delivered three times runs the handler once; a failed
// delivery releases its claim, so its redelivery runs.
func Example() {
	d, err := dedup.New() // memory store, identity = message UUID
	if err != nil {
		panic(err)
	}
	fail := true
	h := d.Middleware(func(msg *message.Message) ([]*message.Message, error) {
		if msg.UUID == "order-2" && fail {
			fail = false
			return nil, errors.New("stock service down")
		}
		fmt.Println("handled", msg.UUID)
		return nil, nil
	})
	for _, id := range []string{"order-1", "order-1", "order-1", "order-2", "order-2", "order-2"} {
		_, err := h(message.NewMessage(id, nil))
		fmt.Printf("%s: err=%v deferred=%v\n", id, err, levee.IsDeferral(err))
	}
	// Output:
	// handled order-1
	// order-1: err=<nil> deferred=false
	// order-1: err=<nil> deferred=false
	// order-1: err=<nil> deferred=false
	// order-2: err=stock service down deferred=false
	// handled order-2
	// order-2: err=<nil> deferred=false
	// order-2: err=<nil> deferred=false
}

// A key from the payload: two messages with different UUIDs but the same
// order id are one identity.
func ExampleJSONPointer() {
	key, err := dedup.JSONPointer("/order/id")
	if err != nil {
		panic(err)
	}
	d, err := dedup.New(dedup.WithKeyFunc(key))
	if err != nil {
		panic(err)
	}
	h := d.Middleware(func(msg *message.Message) ([]*message.Message, error) {
		fmt.Println("handled", msg.UUID)
		return nil, nil
	})
	for _, m := range []*message.Message{
		message.NewMessage("a", []byte(`{"order":{"id":"o-17"}}`)),
		message.NewMessage("b", []byte(`{"order":{"id":"o-17"}}`)),
		message.NewMessage("c", []byte(`{"order":{}}`)),
	} {
		_, err := h(m)
		fmt.Println(m.UUID, errors.Is(err, dedup.ErrNoKey), err != nil && levee.ClassOf(err) == levee.ClassValidation)
	}
	// Output:
	// handled a
	// a false false
	// b false false
	// c true true
}
