package amqp

import (
	"math"
	"strconv"
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
		{"99", 10, 9}, // levee_priority's range is 0..9, as the scheduler ranks it
		{"-4", 10, 0},
		{"garbage", 10, 0},
		{"7", 0, 0},
		{"7", 5, 5},
		// read as the scheduler reads them: spaces, a sign, saturation
		{" 5 ", 10, 5},
		{"+6", 10, 6},
		{"99999999999999999999", 10, 9},
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
	const maxInt64 = int64(math.MaxInt64)
	cases := []struct {
		name        string
		quorum      bool
		redelivered bool
		headers     amqp.Table
		wantCount   string
	}{
		{"classic", false, false, amqp.Table{"k": "v"}, ""},
		{"quorum first", true, false, amqp.Table{"k": "v"}, "1"},
		{"quorum redelivered", true, true, amqp.Table{"k": "v", "x-delivery-count": int64(2)}, "3"},
		{"quorum redelivered int32", true, true, amqp.Table{"k": "v", "x-delivery-count": int32(2)}, "3"},
		{"quorum redelivered zero", true, true, amqp.Table{"k": "v", "x-delivery-count": int64(0)}, "1"},
		{"quorum redelivered without count", true, true, amqp.Table{"k": "v"}, "1"},
		{"non-string header", false, false, amqp.Table{"k": "v", "x-death": []any{"a"}}, ""},
		// Trust boundary: a producer's levee_delivery_count never survives.
		{"classic forged count", false, false, amqp.Table{"k": "v", levee.KeyDeliveryCount: "99"}, ""},
		{"quorum forged count", true, false, amqp.Table{"k": "v", levee.KeyDeliveryCount: "99"}, "1"},
		{"quorum forged count redelivered", true, true, amqp.Table{"k": "v", levee.KeyDeliveryCount: "99", "x-delivery-count": int64(1)}, "2"},
		// Nor does a producer's x-delivery-count: a classic queue passes
		// it through on every delivery, a quorum queue on the first.
		{"classic forged x-delivery-count", false, false, amqp.Table{"k": "v", "x-delivery-count": int64(99)}, ""},
		{"classic forged x-delivery-count redelivered", false, true, amqp.Table{"k": "v", "x-delivery-count": int64(99)}, ""},
		{"classic forged x-delivery-count string", false, false, amqp.Table{"k": "v", "x-delivery-count": "99"}, ""},
		{"quorum forged x-delivery-count", true, false, amqp.Table{"k": "v", "x-delivery-count": int64(99)}, "1"},
		{"quorum forged x-delivery-count int32", true, false, amqp.Table{"k": "v", "x-delivery-count": int32(99)}, "1"},
		{"quorum forged x-delivery-count max", true, false, amqp.Table{"k": "v", "x-delivery-count": maxInt64}, "1"},
		// Insane values on a redelivery: no overflow, no negative count.
		{"quorum redelivered max", true, true, amqp.Table{"k": "v", "x-delivery-count": maxInt64}, "1"},
		{"quorum redelivered max-1", true, true, amqp.Table{"k": "v", "x-delivery-count": maxInt64 - 1}, strconv.FormatInt(maxInt64, 10)},
		{"quorum redelivered negative", true, true, amqp.Table{"k": "v", "x-delivery-count": int64(-5)}, "1"},
		{"quorum redelivered min", true, true, amqp.Table{"k": "v", "x-delivery-count": int64(math.MinInt64)}, "1"},
		{"quorum redelivered string", true, true, amqp.Table{"k": "v", "x-delivery-count": "7"}, "1"},
		{"quorum redelivered float", true, true, amqp.Table{"k": "v", "x-delivery-count": 7.0}, "1"},
		{"quorum redelivered unsigned", true, true, amqp.Table{"k": "v", "x-delivery-count": uint16(7)}, "1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := amqp.Table{uuidHeader: "id"}
			for k, v := range tc.headers {
				h[k] = v
			}
			msg, err := Marshaler{Quorum: tc.quorum}.Unmarshal(amqp.Delivery{Headers: h, Body: []byte("b"), Redelivered: tc.redelivered})
			if err != nil {
				t.Fatal(err)
			}
			if msg.UUID != "id" || msg.Metadata.Get("k") != "v" {
				t.Fatalf("got %s %v", msg.UUID, msg.Metadata)
			}
			if got := msg.Metadata.Get(levee.KeyDeliveryCount); got != tc.wantCount {
				t.Fatalf("got delivery count %q, want %q", got, tc.wantCount)
			}
			if v, ok := msg.Metadata[deliveryCountHeader]; ok {
				t.Fatalf("got metadata %s=%q, want none", deliveryCountHeader, v)
			}
		})
	}
}

// TestAMQPMarshalerAcquiredCount: from RabbitMQ 4.3 on, a basic.nack (how
// Levee returns a message) leaves x-delivery-count at 0 and counts the
// return in x-acquired-count, which is then the delivery count. On an
// older broker x-acquired-count is never read (only a producer can have
// set it), and neither header is kept in metadata.
func TestAMQPMarshalerAcquiredCount(t *testing.T) {
	cases := []struct {
		name        string
		acquired    bool // the server counts acquisitions (4.3+)
		redelivered bool
		headers     amqp.Table
		wantCount   string
	}{
		{"4.3 nacked three times", true, true, amqp.Table{deliveryCountHeader: int64(0), acquiredCountHeader: int64(3)}, "4"},
		{"4.3 rejected and nacked", true, true, amqp.Table{deliveryCountHeader: int64(1), acquiredCountHeader: int64(2)}, "3"},
		{"4.3 first delivery, forged", true, false, amqp.Table{acquiredCountHeader: int64(99)}, "1"},
		{"4.3 without x-acquired-count", true, true, amqp.Table{deliveryCountHeader: int64(2)}, "3"},
		{"4.3 garbage x-acquired-count", true, true, amqp.Table{deliveryCountHeader: int64(2), acquiredCountHeader: "7"}, "3"},
		{"4.3 negative x-acquired-count", true, true, amqp.Table{acquiredCountHeader: int64(-1)}, "1"},
		{"older broker, forged x-acquired-count", false, true, amqp.Table{deliveryCountHeader: int64(1), acquiredCountHeader: int64(99)}, "2"},
		{"older broker, first delivery", false, false, amqp.Table{acquiredCountHeader: int32(99)}, "1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := amqp.Table{uuidHeader: "id", "k": "v"}
			for k, v := range tc.headers {
				h[k] = v
			}
			m := Marshaler{Quorum: true, AcquiredCount: tc.acquired}
			msg, err := m.Unmarshal(amqp.Delivery{Headers: h, Body: []byte("b"), Redelivered: tc.redelivered})
			if err != nil {
				t.Fatal(err)
			}
			if got := msg.Metadata.Get(levee.KeyDeliveryCount); got != tc.wantCount {
				t.Errorf("got delivery count %q, want %q", got, tc.wantCount)
			}
			for _, k := range []string{deliveryCountHeader, acquiredCountHeader} {
				if v, ok := msg.Metadata[k]; ok {
					t.Errorf("got metadata %s=%q, want none", k, v)
				}
			}
			if msg.Metadata.Get("k") != "v" {
				t.Errorf("lost header k: %v", msg.Metadata)
			}
		})
	}
}

func TestServerCountsAcquisitions(t *testing.T) {
	for version, want := range map[string]bool{
		"3.10.8":     false,
		"3.13.7":     false,
		"4.0.5":      false,
		"4.2.5":      false,
		"4.3.0":      true,
		"4.3.0-rc.1": true,
		"4.3.5":      true,
		"4.10.1":     true,
		"5.0.0":      true,
		"":           false,
		"4":          false,
		"garbage":    false,
		"x.3.0":      false,
	} {
		if got := ServerCountsAcquisitions(version); got != want {
			t.Errorf("ServerCountsAcquisitions(%q) = %v, want %v", version, got, want)
		}
	}
}
