package bench

import (
	"strconv"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	wmw "github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/levee-dev/levee/dedup"
)

// dedupKeys is the number of distinct messages of the "new" cases: runs
// must stay under it (-benchtime 200000x) or messages repeat and become
// duplicates.
const dedupKeys = 1 << 18

// dedupMessages returns n messages with distinct UUIDs and a little
// metadata, as a transport delivers them.
func dedupMessages(n int) []*message.Message {
	out := make([]*message.Message, n)
	for i := range out {
		out[i] = &message.Message{UUID: "m-" + strconv.Itoa(i), Metadata: message.Metadata{"k": "v"}}
	}
	return out
}

// dedupCases are the deduplicators compared, each wrapping a no-op
// handler and built afresh for every run (a -count repetition must not
// find the last one's identities): Levee's with the memory store (claim,
// handler, done), and Watermill's Deduplicator with its map repository,
// keyed by UUID (as Levee) and by its default Adler-32 hash of the
// payload. Watermill's repository starts a goroutine that nothing stops
// (one per build).
func dedupCases() []struct {
	name string
	mk   func(b *testing.B) message.HandlerFunc
} {
	wm := func(key wmw.MessageHasher) func(b *testing.B) message.HandlerFunc {
		return func(b *testing.B) message.HandlerFunc {
			repo, err := wmw.NewMapExpiringKeyRepository(dedup.DefaultWindow)
			if err != nil {
				b.Fatal(err)
			}
			return (&wmw.Deduplicator{KeyFactory: key, Repository: repo}).Middleware(middlewareNoop)
		}
	}
	return []struct {
		name string
		mk   func(b *testing.B) message.HandlerFunc
	}{
		{"bare", func(*testing.B) message.HandlerFunc { return middlewareNoop }},
		{"levee_memory", func(b *testing.B) message.HandlerFunc {
			store, err := dedup.NewMemStore(dedupKeys)
			if err != nil {
				b.Fatal(err)
			}
			d, err := dedup.New(dedup.WithStore(store))
			if err != nil {
				b.Fatal(err)
			}
			return d.Middleware(middlewareNoop)
		}},
		{"watermill_deduplicator_uuid", wm(func(m *message.Message) (string, error) { return m.UUID, nil })},
		{"watermill_deduplicator_adler32", wm(nil)},
	}
}

// BenchmarkDedup: one message through each deduplicator; "new" is a
// message seen for the first time (the handler runs), "duplicate" one
// seen before (dropped).
func BenchmarkDedup(b *testing.B) {
	for _, c := range dedupCases() {
		b.Run(c.name+"/new", func(b *testing.B) {
			h := c.mk(b)
			msgs := dedupMessages(dedupKeys)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := h(msgs[i%dedupKeys]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		b.Run(c.name+"/duplicate", func(b *testing.B) {
			h := c.mk(b)
			m := message.NewMessage("dup", []byte(`{"order":"o-1"}`))
			if _, err := h(m); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := h(m); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/duplicate/parallel", func(b *testing.B) {
			h := c.mk(b)
			m := message.NewMessage("dup-p", []byte(`{"order":"o-2"}`))
			if _, err := h(m); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := h(m); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkDedupProduces: a new message whose handler returns a message
// for the router to publish, then acked as the router acks it after the
// publish. Levee marks such an identity done only once the message is
// acked (a failed publish Nacks it and the redelivery must run again),
// which costs a goroutine waiting for the ack; Watermill's Deduplicator
// marks the key when it first sees the message, before the handler runs.
func BenchmarkDedupProduces(b *testing.B) {
	out := []*message.Message{message.NewMessage("out", nil)}
	produce := func(*message.Message) ([]*message.Message, error) { return out, nil }
	cases := []struct {
		name string
		mk   func(b *testing.B) message.HandlerFunc
	}{
		{"bare", func(*testing.B) message.HandlerFunc { return produce }},
		{"levee_memory", func(b *testing.B) message.HandlerFunc {
			store, err := dedup.NewMemStore(dedupKeys)
			if err != nil {
				b.Fatal(err)
			}
			d, err := dedup.New(dedup.WithStore(store))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = d.Close() })
			return d.Middleware(produce)
		}},
		{"watermill_deduplicator_uuid", func(b *testing.B) message.HandlerFunc {
			repo, err := wmw.NewMapExpiringKeyRepository(dedup.DefaultWindow)
			if err != nil {
				b.Fatal(err)
			}
			return (&wmw.Deduplicator{KeyFactory: func(m *message.Message) (string, error) { return m.UUID, nil }, Repository: repo}).Middleware(produce)
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			h := c.mk(b)
			msgs := dedupMessages(dedupKeys)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				m := msgs[i%dedupKeys]
				if got, err := h(m); err != nil || len(got) != 1 {
					b.Fatalf("%d messages, %v", len(got), err)
				}
				m.Ack()
				i++
			}
		})
	}
}
