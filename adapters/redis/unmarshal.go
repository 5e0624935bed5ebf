package redis

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"

	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
)

// unmarshaller is watermill-redisstream's wire format, except that it
// never fails. watermill-redisstream stops a group member on an entry it
// cannot decode (no UUID field, metadata that is not msgpack): the entry
// stays pending, the next member that claims it stops too, and the
// topic stalls with nothing dead-lettered. Such an entry is handed over
// instead, with what could be read of it (the UUID, else one derived from
// the entry's fields; the payload) and levee.KeyUndecodable set to the
// reason, so the dlq dead-letters it (class validation). A producer's own
// KeyUndecodable is dropped from an entry that decodes.
type unmarshaller struct {
	redisstream.DefaultMarshallerUnmarshaller
}

func (u unmarshaller) Unmarshal(values map[string]any) (msg *message.Message, err error) {
	msg, err = u.DefaultMarshallerUnmarshaller.Unmarshal(values)
	if err == nil {
		delete(msg.Metadata, levee.KeyUndecodable)
		return msg, nil
	}
	id, _ := values[redisstream.UUIDHeaderKey].(string)
	if id == "" {
		id = entryID(values)
	}
	payload, _ := values["payload"].(string)
	m := message.NewMessage(id, []byte(payload))
	m.Metadata.Set(levee.KeyUndecodable, fmt.Sprintf("redis stream entry: %v", err))
	return m, nil
}

// entryID derives a stable UUID stand-in from an entry's fields, so every
// delivery of the entry has the same one (the dlq's attempt table and a
// dead letter's identity key on it).
func entryID(values map[string]any) string {
	h := sha256.New()
	for _, k := range slices.Sorted(maps.Keys(values)) {
		fmt.Fprintf(h, "%d:%s=%v;", len(k), k, values[k])
	}
	return "undecodable-" + hex.EncodeToString(h.Sum(nil)[:16])
}
