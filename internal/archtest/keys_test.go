package archtest

import (
	"testing"

	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/tracing"
)

// The replayer writes the original trace context under a key the tracing
// middleware reads to link a replay to its original trace: one key, two
// packages that must not import each other's internals.
func TestReplayTraceKeyIsShared(t *testing.T) {
	if dlq.KeyOriginalTraceparent != tracing.MetaOriginalTraceparent {
		t.Fatalf("dlq writes %q but tracing reads %q", dlq.KeyOriginalTraceparent, tracing.MetaOriginalTraceparent)
	}
}
