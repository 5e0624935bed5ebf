package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigCheckWarnings: a paused rate is a warning with its line;
// telemetry sections, whose providers only the service's code can give,
// get one note, not a warning each.
func TestConfigCheckWarnings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "levee.yaml")
	body := "handlers:\n" +
		"  pay:\n" +
		"    tracing: {}\n" +
		"    metrics: true\n" +
		"    ratelimit: {rate: 0}\n" +
		"  ship:\n" +
		"    tracing: {}\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"config", "check", path}, &out, &errb); code != 0 {
		t.Fatalf("code %d, stderr %q", code, errb.String())
	}
	got := out.String()
	wantWarning := "warning: " + path + ":5: handlers.pay.ratelimit.rate: rate 0 pauses the handler"
	if !strings.Contains(got, wantWarning) {
		t.Errorf("got %q, want a line starting %q", got, wantWarning)
	}
	if n := strings.Count(got, "warning:"); n != 1 {
		t.Errorf("got %d warnings, want 1 (the paused rate):\n%s", n, got)
	}
	if !strings.Contains(got, "note: 3 telemetry sections (tracing, metrics) record only when the service passes") {
		t.Errorf("got %q, want one note for the 3 telemetry sections", got)
	}
}

// TestConfigCheckFoldsRepeatedWarnings: a warning several handlers get
// word for word is printed once, naming the others and their lines, so a
// file of many handlers is not drowned in copies (12 handlers with the
// default breaker and dlq printed 12 warnings of 300 characters); a
// warning of one handler, and one whose text differs, stay as they are.
func TestConfigCheckFoldsRepeatedWarnings(t *testing.T) {
	var b strings.Builder
	b.WriteString("handlers:\n")
	for i := range 12 {
		fmt.Fprintf(&b, "  h%02d:\n    dlq: {}\n    breaker: {}\n", i)
	}
	b.WriteString("  paused:\n    ratelimit: {rate: 0}\n")
	path, got := checkPasses(t, b.String())
	if n := strings.Count(got, "warning:"); n != 2 {
		t.Errorf("got %d warnings, want 2 (the breaker folded, the paused rate):\n%s", n, got)
	}
	var others []string
	for i := 1; i < 12; i++ {
		others = append(others, fmt.Sprintf("h%02d (line %d)", i, 4+3*i))
	}
	for _, want := range []string{
		"warning: " + path + ":4: handlers.h00.breaker: the breaker trips after 5 consecutive failures and the dlq allows 5 attempts",
		"\n  the same for 11 more handlers: " + strings.Join(others, ", ") + "\n",
		"warning: " + path + ":39: handlers.paused.ratelimit.rate: rate 0 pauses the handler",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("got\n%s\nwant it to contain %q", got, want)
		}
	}
}

// TestConfigCheckWarnsPostgresConnections: over PostgreSQL each message in
// flight holds one of the subscriber's connections whatever its handler,
// so a file whose handlers (and, with a store, their dead-letter topics)
// have more consumers than that gets a warning with the numbers; with
// max_conns that covers them, none. Before, nothing said that 10
// handlers at concurrency 2 shared 16 connections.
func TestConfigCheckWarnsPostgresConnections(t *testing.T) {
	for _, tc := range []struct {
		name, maxConns, want string
	}{
		{"default max_conns", "", "warning: %s:1: transport.concurrency: the file's 10 handlers and the 10 dead-letter topics the service's monitor consumes " +
			"at concurrency 2 are 40 consumers, and each message in flight holds one of the subscriber's 16 connections (max_conns 20 less the publisher's 4): " +
			"at most 16 messages are in flight across the service"},
		{"max_conns covers them", ", max_conns: 44", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			fmt.Fprintf(&b, "transport: {kind: postgres, concurrency: 2, postgres: {url: 'postgres://u@127.0.0.1:5432/db'%s}}\nstore: {kind: memory}\nhandlers:\n", tc.maxConns)
			for i := range 10 {
				fmt.Fprintf(&b, "  h%d:\n    dlq: {}\n", i)
			}
			path, got := checkPasses(t, b.String())
			if tc.want == "" {
				if strings.Contains(got, "consumers, and each message in flight") {
					t.Errorf("got\n%s\nwant no warning about connections", got)
				}
				return
			}
			if want := fmt.Sprintf(tc.want, path); !strings.Contains(got, want) {
				t.Errorf("got\n%s\nwant it to contain %q", got, want)
			}
			if want := "set max_conns to 44, within PostgreSQL's max_connections"; !strings.Contains(got, want) {
				t.Errorf("got\n%s\nwant it to contain %q", got, want)
			}
		})
	}
}

// TestConfigCheckNotesSharedDedupStore: a dedup section with store: shared
// takes its store from config.Deps.DedupStore, which no file gives; the
// check passed such a file silently and service.Run then failed with
// "dedup store: shared needs Deps.DedupStore". It gets one note naming the
// handlers, like the telemetry sections.
func TestConfigCheckNotesSharedDedupStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "levee.yaml")
	body := "handlers:\n  inv:\n    dedup: {store: shared}\n  pay:\n    dedup: {store: shared}\n  ship:\n    dedup: {}\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"config", "check", path}, &out, &errb); code != 0 {
		t.Fatalf("code %d, stderr %q", code, errb.String())
	}
	want := "note: dedup store: shared (handlers inv, pay) takes its store from config.Deps.DedupStore"
	if !strings.Contains(out.String(), want) {
		t.Errorf("got %q, want a line starting %q", out.String(), want)
	}
}

// TestConfigCheckHoldsAgainstTheMaxHold: a service holds a message at
// most HoldFraction of the ack deadline (Deps.MaxHold), and Run refuses
// a hold above it; the check compared holds with the whole deadline and
// passed a max_hold of 9s over a 10s deadline that the service refused.
func TestConfigCheckHoldsAgainstTheMaxHold(t *testing.T) {
	path := filepath.Join(t.TempDir(), "levee.yaml")
	body := "transport: {kind: nats, ack_deadline: 10s, nats: {url: \"nats://127.0.0.1:4222\"}}\nhandlers:\n  h:\n    dlq: {max_hold: 9s}\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := run([]string{"config", "check", path}, &out, &errb)
	want := path + ":4: handlers.h.dlq.max_hold: 9s is longer than the max hold (8s"
	if code != 1 || !strings.Contains(errb.String(), want) || !strings.Contains(errb.String(), "80% of the transport's ack deadline (10s)") {
		t.Errorf("code %d, stderr %q, want 1 and %q, naming 80%% of the ack deadline", code, errb.String(), want)
	}
}

// TestConfigCheckDeadLetterTopicTheTransportRefuses: a dlq.topic in the
// file that the transport cannot carry (over PostgreSQL, longer than
// postgres.MaxTopicLen) made service.Run fail, and passed the check.
func TestConfigCheckDeadLetterTopicTheTransportRefuses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "levee.yaml")
	long := strings.Repeat("t", 80)
	body := "transport: {kind: postgres, postgres: {url: \"postgres://postgres@127.0.0.1:5432/test\"}}\nhandlers:\n  h:\n    dlq: {topic: " + long + "}\n  ok:\n    dlq: {topic: short.dlq}\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := run([]string{"config", "check", path}, &out, &errb)
	want := path + ":4: handlers.h.dlq.topic: levee/postgres: topic too long"
	if code != 1 || !strings.Contains(errb.String(), want) || strings.Contains(errb.String(), "handlers.ok") {
		t.Errorf("code %d, stderr %q, want 1 and only %q", code, errb.String(), want)
	}
}
