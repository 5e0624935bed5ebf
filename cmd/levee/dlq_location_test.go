package main

import (
	"strings"
	"testing"

	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
)

// `levee dlq show` prints the code location of a letter that did not
// panic (the handler's function, which the dlq writes on every letter
// from a Stack or config), with no stack block.
func TestShowPrintsHandlerLocation(t *testing.T) {
	var b strings.Builder
	writeShow(&b, dlqops.Record{ID: "h", ErrorClass: "permanent", Metadata: map[string]string{
		dlq.KeyErrorClass: "permanent", dlq.KeyCodeLocation: "example.com/shop.chargeCard (/src/shop/pay.go:17)",
	}})
	out := b.String()
	if !strings.Contains(out, "code location:") || !strings.Contains(out, " example.com/shop.chargeCard (/src/shop/pay.go:17)\n") {
		t.Errorf("show output lacks the handler's location:\n%s", out)
	}
	if strings.Contains(out, "stack (") {
		t.Errorf("a letter without a stack shows one:\n%s", out)
	}
}
