package redis

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
)

// docs/TRANSPORTS.md states how long a closing member waits for a held
// message's handler (once for all slots), and how soon a live member
// claims what it gave back; this keeps them true.
func TestDocsStateCloseTimes(t *testing.T) {
	b, err := os.ReadFile("../../docs/TRANSPORTS.md")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(strings.Fields(string(b)), " ")
	for _, want := range []string{
		fmt.Sprintf("the member waits up to %d s for the handler to settle it", int(settleGrace.Seconds())),
		fmt.Sprintf("within min(`ack_deadline`/2, %d s)", int(redisstream.DefaultClaimInterval.Seconds())),
		fmt.Sprintf("so the Close waits %d s at most, not %d s per slot", int(settleGrace.Seconds()), int(settleGrace.Seconds())),
	} {
		if !strings.Contains(text, want) {
			t.Errorf("docs/TRANSPORTS.md does not say %q", want)
		}
	}
}
