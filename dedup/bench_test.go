package dedup_test

import (
	"strconv"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/dedup"
)

func nop(*message.Message) ([]*message.Message, error) { return nil, nil }

// BenchmarkMemStore: one message's whole path (claim, handler, done) with
// a fresh identity, and a duplicate (claim finds done).
func BenchmarkMemStore(b *testing.B) {
	b.Run("new", func(b *testing.B) {
		s, _ := dedup.NewMemStore(dedup.DefaultMaxKeys)
		h := newBenchDedup(b, s).Middleware(nop)
		msgs := benchMessages(b.N)
		b.ReportAllocs()
		b.ResetTimer()
		for _, m := range msgs {
			if _, err := h(m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("duplicate", func(b *testing.B) {
		s, _ := dedup.NewMemStore(1024)
		h := newBenchDedup(b, s).Middleware(nop)
		m := message.NewMessage("dup", nil)
		_, _ = h(m)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := h(m); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func newBenchDedup(b *testing.B, s dedup.Store) *dedup.Dedup {
	d, err := dedup.New(dedup.WithStore(s))
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// benchMessages returns n messages with distinct UUIDs.
func benchMessages(n int) []*message.Message {
	out := make([]*message.Message, n)
	for i := range out {
		out[i] = message.NewMessage(strconv.Itoa(i), nil)
	}
	return out
}
