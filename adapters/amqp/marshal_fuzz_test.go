package amqp

import (
	"strconv"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/levee-dev/levee"
)

// FuzzUnmarshal hands the marshaler deliveries whose headers a producer
// chose: any key, values of every AMQP field type (the UUID header
// included), forged delivery counts. Unmarshal never fails (a failure
// would requeue the delivery for ever); the broker's count headers never
// reach the metadata; levee_delivery_count is set exactly on quorum
// queues, and is a count of at least 1.
func FuzzUnmarshal(f *testing.F) {
	f.Add("k", "v", uint8(0), int64(3), true, true, false, "p")
	f.Add(uuidHeader, "", uint8(1), int64(-1), true, false, true, "")
	f.Add(deliveryCountHeader, "9", uint8(2), int64(9223372036854775807), true, true, true, "x")
	f.Add(levee.KeyDeliveryCount, "999", uint8(3), int64(0), false, true, false, "")
	f.Add(acquiredCountHeader, "\xff", uint8(4), int64(1<<62), true, true, true, "y")
	f.Fuzz(func(t *testing.T, key, s string, kind uint8, n int64, quorum, redelivered, acquired bool, body string) {
		values := []any{s, n, int32(n), []byte(s), amqp.Table{key: s, "n": n}, n%2 == 0, float64(n), nil,
			amqp.Decimal{Scale: uint8(n), Value: int32(n)}, time.Unix(n%1e10, 0), []any{s, n}, int8(n), int16(n)}
		h := amqp.Table{key: values[int(kind)%len(values)], deliveryCountHeader: values[int(kind/16)%len(values)],
			acquiredCountHeader: n}
		m := Marshaler{Quorum: quorum, AcquiredCount: acquired}
		msg, err := m.Unmarshal(amqp.Delivery{Headers: h, Body: []byte(body), Redelivered: redelivered})
		if err != nil || msg == nil {
			t.Fatalf("Unmarshal of headers %v: %v, %v", h, msg, err)
		}
		if string(msg.Payload) != body {
			t.Fatalf("payload %q, want %q", msg.Payload, body)
		}
		if _, ok := msg.Metadata[deliveryCountHeader]; ok {
			t.Fatalf("metadata keeps %s: %v", deliveryCountHeader, msg.Metadata)
		}
		if _, ok := msg.Metadata[acquiredCountHeader]; ok {
			t.Fatalf("metadata keeps %s: %v", acquiredCountHeader, msg.Metadata)
		}
		c, set := msg.Metadata[levee.KeyDeliveryCount]
		if set != quorum {
			t.Fatalf("quorum %v: levee_delivery_count %q set %v", quorum, c, set)
		}
		if set {
			if v, err := strconv.ParseInt(c, 10, 64); err != nil || v < 1 {
				t.Fatalf("levee_delivery_count %q is not a count of at least 1", c)
			}
			if !redelivered && c != "1" {
				t.Fatalf("a first delivery counted %q", c)
			}
		}
	})
}
