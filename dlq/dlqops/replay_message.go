package dlqops

import (
	"maps"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/dlq"
)

// W3C trace context keys in metadata.
const (
	keyTraceparent = "traceparent"
	keyTracestate  = "tracestate"
)

// maxReplayCount is the largest count dlq.ParseCount accepts.
const maxReplayCount = 1 << 30

// ReplayMessage builds the message that replays dl: a new UUID, the payload
// byte for byte, the letter's metadata without the failure keys, the
// transport's delivery count or the trace context, plus the lineage:
// dlq.KeyReplayCount (dl.ReplayCount+1, a negative count taken as 0 and
// the result capped at what dlq.ParseCount reads, whatever a store
// returned), dlq.KeyOriginalUUID, dlq.KeyReplayOf,
// dlq.KeyReplayedAt and the old trace context under levee.KeyOriginalTraceparent and
// levee.KeyOriginalTracestate. The letter's levee.KeyDedupID is kept, or
// set to its original UUID when it has none: the replay is the same
// message to a deduplicating consumer (ReplaySelection.NewIdentity
// replaces it).
func ReplayMessage(dl Record, uuid string, now time.Time) *message.Message {
	msg := message.NewMessage(uuid, append([]byte(nil), dl.Payload...))
	md := maps.Clone(dl.Metadata)
	if md == nil {
		md = map[string]string{}
	}
	maps.DeleteFunc(md, func(k, _ string) bool { return dlq.IsFailureKey(k) })
	levee.StripControl(md)
	delete(md, levee.KeyOriginalTraceparent)
	delete(md, levee.KeyOriginalTracestate)
	if tp := md[keyTraceparent]; tp != "" {
		md[levee.KeyOriginalTraceparent] = tp
		if ts := md[keyTracestate]; ts != "" {
			md[levee.KeyOriginalTracestate] = ts
		}
	}
	delete(md, keyTraceparent)
	delete(md, keyTracestate)
	orig := dl.lineageUUID()
	if md[levee.KeyDedupID] == "" && orig != "" {
		md[levee.KeyDedupID] = orig // the identity when it was the UUID
	}
	md[dlq.KeyReplayCount] = strconv.Itoa(min(max(dl.ReplayCount, 0), maxReplayCount-1) + 1)
	md[dlq.KeyOriginalUUID] = orig
	md[dlq.KeyReplayOf] = dl.ID
	md[dlq.KeyReplayedAt] = dlq.FormatTime(now)
	msg.Metadata = md
	return msg
}
