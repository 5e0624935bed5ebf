package redis

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// docs/TRANSPORTS.md states the buffers of a member's connections; this
// keeps it true.
func TestDocsStateMemberBuffers(t *testing.T) {
	b, err := os.ReadFile("../../docs/TRANSPORTS.md")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(strings.Fields(string(b)), " ")
	if want := fmt.Sprintf("Each of them has %d KiB read and write buffers (`redis.MemberBufferSize`", MemberBufferSize>>10); !strings.Contains(text, want) {
		t.Errorf("docs/TRANSPORTS.md does not say %q", want)
	}
}
