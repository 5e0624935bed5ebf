package redis

import (
	"testing"

	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/vmihailenco/msgpack"

	"github.com/levee-dev/levee"
)

// FuzzUnmarshal hands the stream unmarshaller entries with any UUID,
// payload and metadata bytes (a forged msgpack length included): it never
// fails or panics; an entry it cannot decode keeps its payload, gets a
// UUID that is the same on every delivery and the undecodable mark with a
// reason; one it decodes carries no producer's mark.
func FuzzUnmarshal(f *testing.F) {
	md, _ := msgpack.Marshal(message.Metadata{"k": "v", levee.KeyUndecodable: "forged"})
	f.Add("u1", "p", string(md), true, "")
	f.Add("", "p", "\xc1garbage", true, "x")
	f.Add("u2", "", "\xdf\xff\xff\xff\xff", true, "")      // a map of 2^32-1 entries
	f.Add("u3", "", "\x81\xdb\xff\xff\xff\xffk", true, "") // a key of 4 GiB
	f.Add("u4", "p", "", false, "")
	f.Fuzz(func(t *testing.T, uuid, payload, metadata string, withMetadata bool, extra string) {
		values := map[string]any{"payload": payload}
		if uuid != "" {
			values[redisstream.UUIDHeaderKey] = uuid
		}
		if withMetadata {
			values["metadata"] = metadata
		}
		if extra != "" {
			values["x"] = extra
		}
		msg, err := unmarshaller{}.Unmarshal(values)
		if err != nil || msg == nil {
			t.Fatalf("Unmarshal: %v, %v", msg, err)
		}
		if string(msg.Payload) != payload || msg.UUID == "" || uuid != "" && msg.UUID != uuid {
			t.Fatalf("got uuid %q payload %q from uuid %q payload %q", msg.UUID, msg.Payload, uuid, payload)
		}
		reason, marked := msg.Metadata[levee.KeyUndecodable]
		if marked && reason == "" {
			t.Fatal("marked undecodable without a reason")
		}
		if !marked {
			return
		}
		again, _ := unmarshaller{}.Unmarshal(values)
		if again.UUID != msg.UUID {
			t.Fatalf("redelivery changed the UUID: %q then %q", msg.UUID, again.UUID)
		}
	})
}
