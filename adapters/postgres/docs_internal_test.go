package postgres

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/levee-dev/levee/adapters/internal/kit"
	"github.com/levee-dev/levee/adapters/transport"
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
		fmt.Sprintf("a topic of %d to %d bytes fits, but its default `.dlq` does not", MaxTopicLen-len(".dlq")+1, MaxTopicLen),
		fmt.Sprintf("| postgres | Nacked within a %d s grace:", int(kit.SettleGrace.Seconds())),
		fmt.Sprintf("the publisher keeps up to %d connections of its own (`max_conns` − concurrency, at least 1: `postgres.PublishConns`)", PublishConns),
		fmt.Sprintf("the default `max_conns` alone reaches PostgreSQL's default 100 at concurrency %d (and %d at concurrency 5:",
			defaultReaching(100), Config{}.maxConns(transport.Settings{Concurrency: 5})),
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("docs/TRANSPORTS.md does not say %q", want)
		}
	}
	b, err = os.ReadFile("../service/doc.go")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("PostgreSQL, longer than %d bytes", MaxTopicLen); !strings.Contains(strings.Join(strings.Fields(strings.ReplaceAll(string(b), "//", "")), " "), want) {
		t.Errorf("adapters/service/doc.go does not say %q", want)
	}
}

// defaultReaching is the lowest concurrency whose default max_conns is at
// least n.
func defaultReaching(n int) int {
	c := 1
	for (Config{}).maxConns(transport.Settings{Concurrency: c}) < n {
		c++
	}
	return c
}
