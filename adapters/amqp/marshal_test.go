package amqp

import (
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/levee-dev/levee"
)

func TestAMQPMarshalerPriority(t *testing.T) {
	cases := []struct {
		value string
		max   int
		want  uint8
	}{
		{"", 10, 0},
		{"3", 10, 3},
		{"99", 10, 10},
		{"-4", 10, 0},
		{"garbage", 10, 0},
		{"7", 0, 0},
	}
	for _, tc := range cases {
		msg := message.NewMessage("u", []byte("p"))
		if tc.value != "" {
			msg.Metadata.Set(MetadataPriority, tc.value)
		}
		p, err := Marshaler{MaxPriority: tc.max}.Marshal(msg)
		if err != nil {
			t.Fatal(err)
		}
		if p.Priority != tc.want {
			t.Errorf("priority %q max %d: got %d, want %d", tc.value, tc.max, p.Priority, tc.want)
		}
	}
}

func TestAMQPMarshalerUnmarshalHeaders(t *testing.T) {
	cases := []struct {
		name      string
		quorum    bool
		headers   amqp.Table
		wantCount string
	}{
		{"classic", false, amqp.Table{"k": "v"}, ""},
		{"quorum first", true, amqp.Table{"k": "v"}, "1"},
		{"quorum redelivered", true, amqp.Table{"k": "v", "x-delivery-count": int64(2)}, "3"},
		{"non-string header", false, amqp.Table{"k": "v", "x-death": []any{"a"}}, ""},
		// Trust boundary: a producer's levee_delivery_count never survives.
		{"classic forged count", false, amqp.Table{"k": "v", levee.KeyDeliveryCount: "99"}, ""},
		{"quorum forged count", true, amqp.Table{"k": "v", levee.KeyDeliveryCount: "99"}, "1"},
		{"quorum forged count redelivered", true, amqp.Table{"k": "v", levee.KeyDeliveryCount: "99", "x-delivery-count": int64(1)}, "2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := amqp.Table{uuidHeader: "id"}
			for k, v := range tc.headers {
				h[k] = v
			}
			msg, err := Marshaler{Quorum: tc.quorum}.Unmarshal(amqp.Delivery{Headers: h, Body: []byte("b")})
			if err != nil {
				t.Fatal(err)
			}
			if msg.UUID != "id" || msg.Metadata.Get("k") != "v" {
				t.Fatalf("got %s %v", msg.UUID, msg.Metadata)
			}
			if got := msg.Metadata.Get(levee.KeyDeliveryCount); got != tc.wantCount {
				t.Fatalf("got delivery count %q, want %q", got, tc.wantCount)
			}
		})
	}
}
