package redis

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
)

// docs/TRANSPORTS.md states how long a closing member waits for a held
// message's handler, and how soon a live member claims what it gave back;
// this keeps both true.
func TestDocsStateCloseTimes(t *testing.T) {
	b, err := os.ReadFile("../../docs/TRANSPORTS.md")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(strings.Fields(string(b)), " ")
	for _, want := range []string{
		fmt.Sprintf("the member waits up to %d s for the handler to settle it", int(settleGrace.Seconds())),
		fmt.Sprintf("within min(`ack_deadline`/2, %d s)", int(redisstream.DefaultClaimInterval.Seconds())),
	} {
		if !strings.Contains(text, want) {
			t.Errorf("docs/TRANSPORTS.md does not say %q", want)
		}
	}
}
