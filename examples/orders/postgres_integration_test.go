//go:build integration

package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// With -postgres, batched inventory rows land in real PostgreSQL exactly
// once per order line (run() fails otherwise).
func TestRunWithPostgres(t *testing.T) {
	o := testOptions()
	o.postgres = "postgres://postgres@127.0.0.1:5432/test"
	var out bytes.Buffer
	if err := run(context.Background(), o, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "PostgreSQL rows for this run:") {
		t.Fatalf("report lacks the PostgreSQL line:\n%s", out.String())
	}
}
