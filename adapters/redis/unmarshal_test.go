package redis

import (
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/vmihailenco/msgpack"

	"github.com/levee-dev/levee"
)

func TestUnmarshalNeverFails(t *testing.T) {
	md, err := msgpack.Marshal(message.Metadata{"k": "v", levee.KeyUndecodable: "forged"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		values  map[string]any
		uuid    string
		payload string
		reason  string // "" when the entry decodes
	}{
		{"decodes", map[string]any{redisstream.UUIDHeaderKey: "u1", "payload": "p", "metadata": string(md)}, "u1", "p", ""},
		{"no uuid", map[string]any{"payload": "p"}, "undecodable-", "p", "_watermill_message_uuid key is missing"},
		{"metadata not msgpack", map[string]any{redisstream.UUIDHeaderKey: "u2", "payload": "p", "metadata": "\xc1garbage"}, "u2", "p", "unmarshal metadata fail"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			msg, err := unmarshaller{}.Unmarshal(tt.values)
			if err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			if !strings.HasPrefix(msg.UUID, tt.uuid) || string(msg.Payload) != tt.payload {
				t.Errorf("got uuid %q payload %q, want %q... and %q", msg.UUID, msg.Payload, tt.uuid, tt.payload)
			}
			reason, marked := msg.Metadata[levee.KeyUndecodable]
			if tt.reason == "" {
				if marked || msg.Metadata.Get("k") != "v" {
					t.Errorf("a decodable entry: metadata %v, want k=v and no %s (a producer's is dropped)", msg.Metadata, levee.KeyUndecodable)
				}
				return
			}
			if !marked || !strings.Contains(reason, tt.reason) {
				t.Errorf("got %s=%q, want a reason containing %q", levee.KeyUndecodable, reason, tt.reason)
			}
		})
	}
	a, _ := unmarshaller{}.Unmarshal(map[string]any{"payload": "p", "x": "1"})
	b, _ := unmarshaller{}.Unmarshal(map[string]any{"x": "1", "payload": "p"})
	if a.UUID != b.UUID {
		t.Errorf("an entry without a UUID got %q and %q: want one stable id per entry", a.UUID, b.UUID)
	}
}
