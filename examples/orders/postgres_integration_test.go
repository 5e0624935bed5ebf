//go:build integration

package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// With -postgres, batched inventory rows land in real PostgreSQL exactly
// once per order line, each order once although every 10th was published
// twice (run() fails otherwise).
func TestRunWithPostgres(t *testing.T) {
	o := testOptions()
	o.postgres = "postgres://postgres@127.0.0.1:5432/test"
	var out bytes.Buffer
	if err := run(context.Background(), o, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "written twice: 0)") || !strings.Contains(out.String(), "inventory dedup: 6 duplicates dropped") {
		t.Fatalf("report lacks the PostgreSQL line:\n%s", out.String())
	}
}
