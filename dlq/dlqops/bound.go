package dlqops

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/internal/trunc"
)

// Caps on the metadata a store keeps of one dead letter. Whatever metadata
// a pipeline produced (thousands of keys, megabyte values), a store keeps
// at most MaxStoredMetadataKeys keys, each at most MaxStoredMetadataKeyBytes
// long with a value of at most MaxStoredMetadataValueBytes, and
// MaxStoredMetadataBytes of keys and values in all. BoundRecord applies
// them; NewRecord and every Store's Add call it, and the cut is recorded in
// Record.Truncated. Levee's own keys are kept first: the failure keys
// (dlq.FailureKeys), then the replay, dedup and trace keys Levee writes,
// then any other "levee_" key, so the failure keys survive a cut however
// many levee_* keys a producer wrote.
//
// The payload is never cut: it is what a replay publishes, byte for byte,
// and the transport that delivered the dead letter already bounds its size.
const (
	MaxStoredMetadataKeys       = 1000
	MaxStoredMetadataKeyBytes   = 256
	MaxStoredMetadataValueBytes = 16 << 10  // 16 KiB
	MaxStoredMetadataBytes      = 256 << 10 // 256 KiB, keys and values
)

// levee key prefix: keys kept before the others when metadata is cut.
const leveePrefix = "levee_"

// keptFirst are the keys, besides the failure keys, that Levee writes on a
// dead letter or a replay and reads back from a stored letter (a replay's
// identity and lineage, the trace context it links to).
var keptFirst = [...]string{
	dlq.KeyReplayCount, dlq.KeyOriginalUUID, dlq.KeyReplayOf, dlq.KeyReplayedAt,
	levee.KeyDedupID, levee.KeyOriginalTraceparent, levee.KeyOriginalTracestate, levee.KeyPriority,
}

// keyRank orders the keys of a cut: the failure keys, which Levee writes
// bounded on every dead letter (0); the other keys Levee writes (1); any
// other key with Levee's prefix, which a producer may have written (2);
// the rest (3). A producer's levee_* keys, however many, never crowd out
// Levee's own.
func keyRank(k string) int {
	switch {
	case !strings.HasPrefix(k, leveePrefix):
		return 3
	case dlq.IsFailureKey(k):
		return 0
	case slices.Contains(keptFirst[:], k):
		return 1
	}
	return 2
}

// BoundRecord returns r with its metadata within the caps above
// (MaxStoredMetadataKeys and the rest). A record already within them is
// returned as is, so BoundRecord is idempotent and costs one pass over the
// keys when nothing is cut. Otherwise it returns a copy whose Metadata is a
// new map: keys longer than MaxStoredMetadataKeyBytes are dropped, longer
// values are cut (valid UTF-8, ending in "…"), then keys are kept, Levee's
// own first (in the order above) and each group in byte order, while the
// count and byte caps allow; what was cut is appended to Truncated. It
// never fails, never panics and never modifies r's map.
func BoundRecord(r Record) Record {
	md, note := boundMetadata(r.Metadata)
	if note == "" {
		return r
	}
	r.Metadata = md
	if r.Truncated != "" {
		r.Truncated += "; "
	}
	r.Truncated += note
	return r
}

// withinCaps reports whether md needs no cut.
func withinCaps(md map[string]string) bool {
	if len(md) > MaxStoredMetadataKeys {
		return false
	}
	total := 0
	for k, v := range md {
		if len(k) > MaxStoredMetadataKeyBytes || len(v) > MaxStoredMetadataValueBytes {
			return false
		}
		total += len(k) + len(v)
	}
	return total <= MaxStoredMetadataBytes
}

// boundMetadata returns md itself and "" when it is within the caps, else a
// bounded copy and a description of the cut.
func boundMetadata(md map[string]string) (map[string]string, string) {
	if withinCaps(md) {
		return md, ""
	}
	keys := make([]string, 0, len(md))
	inBytes := 0
	for k, v := range md {
		keys = append(keys, k)
		inBytes += len(k) + len(v)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if c := cmp.Compare(keyRank(a), keyRank(b)); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	out := make(map[string]string, min(len(md), MaxStoredMetadataKeys))
	var longKeys, cutValues, overCap int
	total := 0
	for _, k := range keys {
		if len(k) > MaxStoredMetadataKeyBytes {
			longKeys++
			continue
		}
		v := md[k]
		if len(v) > MaxStoredMetadataValueBytes {
			v = trunc.String(v, MaxStoredMetadataValueBytes)
			cutValues++
		}
		if len(out) >= MaxStoredMetadataKeys || total+len(k)+len(v) > MaxStoredMetadataBytes {
			overCap++
			continue
		}
		out[k] = v
		total += len(k) + len(v)
	}
	parts := []string{fmt.Sprintf("metadata cut: kept %d of %d keys, %d of %d bytes", len(out), len(md), total, inBytes)}
	if longKeys > 0 {
		parts = append(parts, fmt.Sprintf("%d keys longer than %d bytes dropped", longKeys, MaxStoredMetadataKeyBytes))
	}
	if cutValues > 0 {
		parts = append(parts, fmt.Sprintf("%d values cut to %d bytes", cutValues, MaxStoredMetadataValueBytes))
	}
	if overCap > 0 {
		parts = append(parts, fmt.Sprintf("%d keys dropped over the caps of %d keys and %d bytes",
			overCap, MaxStoredMetadataKeys, MaxStoredMetadataBytes))
	}
	return out, strings.Join(parts, ", ")
}
