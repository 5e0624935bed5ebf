package dlqops_test

import (
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
)

// FuzzReplayMessage replays letters recorded from messages with any
// metadata (forged control, failure and lineage keys, trace context): the
// replay carries no control key and no failure key, its replay count is
// the letter's plus one (capped where dlq reads it back), its lineage names the letter, its payload is the
// letter's byte for byte, and the old trace context moves under
// levee_original_traceparent and levee_original_tracestate.
func FuzzReplayMessage(f *testing.F) {
	f.Add("k", "v", "3", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "a=b", []byte("p"))
	f.Add(levee.KeyDeliveryCount, "9", "1073741824", "", "x", []byte(nil))
	f.Add(dlq.KeyReplayOf, "dl-x", "-1", "garbage", "", []byte{0})
	f.Add(levee.KeyOriginalTraceparent, "forged", "99999999999", "tp", "ts", []byte("{}"))
	f.Add(levee.KeyRetryAfter, "1h", " 7 ", "", "", []byte("x"))
	f.Fuzz(func(t *testing.T, key, value, count, traceparent, tracestate string, payload []byte) {
		msg := message.NewMessage("u", payload)
		msg.Metadata[key] = value
		msg.Metadata[dlq.KeyReplayCount] = count
		msg.Metadata[dlq.KeyOriginalTopic] = "orders"
		msg.Metadata["traceparent"] = traceparent
		msg.Metadata["tracestate"] = tracestate
		dl := dlqops.BoundRecord(dlqops.NewRecord(msg, "orders.dlq", opsNow))
		out := dlqops.ReplayMessage(dl, "r", opsNow)
		md := out.Metadata
		if levee.HasControl(md) {
			t.Fatalf("the replay carries a control key: %v", md)
		}
		for _, k := range dlq.FailureKeys() {
			if _, ok := md[k]; ok {
				t.Fatalf("the replay carries failure key %s: %v", k, md)
			}
		}
		// The count goes up by one and stays one dlq.ParseCount reads back.
		if n, ok := dlq.ParseCount(md[dlq.KeyReplayCount]); !ok || n != min(dl.ReplayCount+1, 1<<30) {
			t.Fatalf("replay count %q, want %d", md[dlq.KeyReplayCount], min(dl.ReplayCount+1, 1<<30))
		}
		if md[dlq.KeyReplayOf] != dl.ID || md[dlq.KeyOriginalUUID] != dl.OriginalUUID || out.UUID != "r" {
			t.Fatalf("lineage %v, want replay of %s", md, dl.ID)
		}
		if string(out.Payload) != string(dl.Payload) {
			t.Fatalf("payload %q, want %q", out.Payload, dl.Payload)
		}
		if _, ok := md["traceparent"]; ok {
			t.Fatalf("the replay continues the old trace: %v", md)
		}
		if tp := dl.Metadata["traceparent"]; md[levee.KeyOriginalTraceparent] != tp {
			t.Fatalf("levee_original_traceparent %q, want the letter's %q", md[levee.KeyOriginalTraceparent], tp)
		}
	})
}

// TestReplayCountFromStore: a record a store returns with a count no
// letter carries (a tampered or foreign row: negative, past what dlq reads
// back, the largest int) is replayed with a count dlq.ParseCount reads
// back, not "-3" or one past it that the next dead letter would reset.
func TestReplayCountFromStore(t *testing.T) {
	for _, tt := range []struct{ stored, want int }{
		{-4, 1}, {0, 1}, {6, 7}, {1 << 30, 1 << 30}, {1<<30 - 1, 1 << 30}, {int(^uint(0) >> 1), 1 << 30},
	} {
		out := dlqops.ReplayMessage(dlqops.Record{ID: "dl-1", ReplayCount: tt.stored}, "r", opsNow)
		if n, ok := dlq.ParseCount(out.Metadata[dlq.KeyReplayCount]); !ok || n != tt.want {
			t.Errorf("stored %d: replay count %q, want %d", tt.stored, out.Metadata[dlq.KeyReplayCount], tt.want)
		}
	}
}
