package adapters

import (
	"testing"

	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp "github.com/rabbitmq/amqp091-go"
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
		p, err := amqpMarshaler{maxPriority: tc.max}.Marshal(msg)
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
		{"classic forged count", false, amqp.Table{"k": "v", MetadataDeliveryCount: "99"}, ""},
		{"quorum forged count", true, amqp.Table{"k": "v", MetadataDeliveryCount: "99"}, "1"},
		{"quorum forged count redelivered", true, amqp.Table{"k": "v", MetadataDeliveryCount: "99", "x-delivery-count": int64(1)}, "2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := amqp.Table{wamqpUUIDHeader: "id"}
			for k, v := range tc.headers {
				h[k] = v
			}
			msg, err := amqpMarshaler{quorum: tc.quorum}.Unmarshal(amqp.Delivery{Headers: h, Body: []byte("b")})
			if err != nil {
				t.Fatal(err)
			}
			if msg.UUID != "id" || msg.Metadata.Get("k") != "v" {
				t.Fatalf("got %s %v", msg.UUID, msg.Metadata)
			}
			if got := msg.Metadata.Get(MetadataDeliveryCount); got != tc.wantCount {
				t.Fatalf("got delivery count %q, want %q", got, tc.wantCount)
			}
		})
	}
}

func TestRetryAfterOf(t *testing.T) {
	for v, want := range map[string]string{"": "0s", "1s": "1s", "junk": "0s", "-1s": "0s",
		"2h": "1h0m0s", "876000h": "1h0m0s"} { // capped at levee.MaxRetryAfter
		msg := message.NewMessage("u", nil)
		if v != "" {
			msg.Metadata.Set(MetadataRetryAfter, v)
		}
		if got := retryAfterOf(msg).String(); got != want {
			t.Errorf("%q: got %s, want %s", v, got, want)
		}
	}
}

// BenchmarkAMQPMarshal: Levee's AMQP marshaler (levee_priority mapped to
// the publishing priority) against watermill-amqp's DefaultMarshaler. It
// lives here, not in bench/, because the marshaler is not exported.
func BenchmarkAMQPMarshal(b *testing.B) {
	msg := message.NewMessage("1", []byte("payload"))
	msg.Metadata.Set(MetadataPriority, "7")
	msg.Metadata.Set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	for _, bc := range []struct {
		name string
		m    wamqp.Marshaler
	}{
		{"watermill_default", wamqp.DefaultMarshaler{}},
		{"levee", amqpMarshaler{maxPriority: 10}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.m.Marshal(msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
