package nats

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// docs/TRANSPORTS.md states how long a closing subscription waits for a
// held message's handler; this keeps it true.
func TestDocsStateSettleGrace(t *testing.T) {
	want := fmt.Sprintf("waits up to %d s for the handler to settle it", int(settleGrace.Seconds()))
	b, err := os.ReadFile("../../docs/TRANSPORTS.md")
	if err != nil {
		t.Fatal(err)
	}
	if text := strings.Join(strings.Fields(string(b)), " "); !strings.Contains(text, want) {
		t.Errorf("docs/TRANSPORTS.md does not say %q (settleGrace is %s)", want, settleGrace)
	}
}

// docs/TRANSPORTS.md states how long a closing subscription may wait for
// its pull requests to expire before it hands held messages back.
func TestDocsStateStalePullWait(t *testing.T) {
	want := fmt.Sprintf("pull requests have expired (at most %d s)", int(fetchWait.Seconds()))
	b, err := os.ReadFile("../../docs/TRANSPORTS.md")
	if err != nil {
		t.Fatal(err)
	}
	if text := strings.Join(strings.Fields(string(b)), " "); !strings.Contains(text, want) {
		t.Errorf("docs/TRANSPORTS.md does not say %q (fetchWait is %s)", want, fetchWait)
	}
}
