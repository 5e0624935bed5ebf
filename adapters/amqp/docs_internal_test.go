package amqp

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// docs/TRANSPORTS.md states how long Close waits for a held delivery's
// handler; this keeps it true.
func TestDocsStateSettleGrace(t *testing.T) {
	want := fmt.Sprintf("| amqp | Nacked with requeue within a %d s grace", int(settleGrace.Seconds()))
	b, err := os.ReadFile("../../docs/TRANSPORTS.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), want) {
		t.Errorf("docs/TRANSPORTS.md does not say %q (settleGrace is %s)", want, settleGrace)
	}
}
