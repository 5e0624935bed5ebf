package main

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"
)

// The demo's file reads its transport kind from LEVEE_TRANSPORT, so a new
// user tries LEVEE_TRANSPORT=nats; the file gives no broker address, and
// the error named a temporary copy of the embedded file, removed by then,
// with no way forward. It names examples/orders/levee.yaml and -transport.
func TestEmbeddedConfigErrorNamesTheFileAndTheFlag(t *testing.T) {
	t.Setenv("LEVEE_TRANSPORT", "nats")
	err := run(context.Background(), testOptions(), io.Discard)
	if err == nil {
		t.Fatal("run over nats without an address succeeded")
	}
	msg := err.Error()
	for _, want := range []string{"examples/orders/levee.yaml", "transport.nats.url", "-transport nats"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q: %s", want, msg)
		}
	}
	if strings.Contains(msg, os.TempDir()) {
		t.Errorf("error names the removed temporary copy: %s", msg)
	}
}
