package nats

import (
	"fmt"
	"os"
	"strings"
	"testing"

	nc "github.com/nats-io/nats.go"
)

// docs/TRANSPORTS.md states the length of a subscription's queue, and
// nats.go's default; this keeps both true.
func TestDocsStateSubQueueLen(t *testing.T) {
	b, err := os.ReadFile("../../docs/TRANSPORTS.md")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(strings.Fields(string(b)), " ")
	above := minSubQueueLen / 4
	for _, want := range []string{
		fmt.Sprintf("nats.go makes it %s messages long", thousands(nc.DefaultMaxChanLen)),
		fmt.Sprintf("Levee makes it %s messages, or 4 per worker at a concurrency above %d", thousands(minSubQueueLen), above),
	} {
		if !strings.Contains(text, want) {
			t.Errorf("docs/TRANSPORTS.md does not say %q", want)
		}
	}
	if subQueueLen(above) != minSubQueueLen || subQueueLen(above+1) != 4*(above+1) {
		t.Errorf("subQueueLen(%d) = %d, subQueueLen(%d) = %d: the doc's threshold is wrong", above, subQueueLen(above), above+1, subQueueLen(above+1))
	}
}

func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
