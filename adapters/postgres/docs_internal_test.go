package postgres

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// docs/TRANSPORTS.md states the longest topic the transport takes; this
// keeps it true.
func TestDocsStateMaxTopicLen(t *testing.T) {
	b, err := os.ReadFile("../../docs/TRANSPORTS.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Join(strings.Fields(string(b)), " ")
	for _, want := range []string{
		fmt.Sprintf("PostgreSQL keeps %d bytes of a name", maxIdentifier),
		fmt.Sprintf("a topic longer than %d bytes is refused", MaxTopicLen),
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("docs/TRANSPORTS.md does not say %q", want)
		}
	}
}
