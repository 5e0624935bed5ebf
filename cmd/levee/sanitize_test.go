package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"github.com/levee-dev/levee/cmd/internal/untrusted"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/dlq/dlqtest"
)

func TestTermSafe(t *testing.T) {
	tests := []struct {
		in, want, wantKeepNL string
	}{
		{"plain text, ünïcode ✓", "plain text, ünïcode ✓", "plain text, ünïcode ✓"},
		{"\x1b]0;pwned\x07\x1b[2J", `\x1b]0;pwned\x07\x1b[2J`, `\x1b]0;pwned\x07\x1b[2J`},
		{"a\nb\r\tc\x7f", `a\nb\r\tc\x7f`, "a\nb\\r\\tc\\x7f"},
		{"csi\u009b31m nel\u0085", `csi\u009b31m nel\u0085`, `csi\u009b31m nel\u0085`},
		{"evil\u202egnp.exe \u2066x\u2069 \u200f \u2028", `evil\u202egnp.exe \u2066x\u2069 \u200f \u2028`, `evil\u202egnp.exe \u2066x\u2069 \u200f \u2028`},
		{"bad \xff\xfe utf8", `bad \xff\xfe utf8`, `bad \xff\xfe utf8`},
	}
	for _, tt := range tests {
		if got := termSafe(tt.in, false); got != tt.want {
			t.Errorf("termSafe(%q, false) = %q want %q", tt.in, got, tt.want)
		}
		if got := termSafe(tt.in, true); got != tt.wantKeepNL {
			t.Errorf("termSafe(%q, true) = %q want %q", tt.in, got, tt.wantKeepNL)
		}
	}
}

// hostile is what a producer can put in a dead letter to attack the
// operator's terminal: OSC (retitle), CSI (clear, colour), BEL, C1 CSI,
// DEL, a bidi override, CR (overwrite the line).
const hostile = "\x1b]0;pwned\x07\x1b[2J\x1b[31m\u009b1m\x7f\u202egnp.exe\rOK"

// terminalActive reports the first character of out a terminal would act
// on (other than newline), or "".
func terminalActive(out string) string {
	for _, r := range out {
		if (r < 0x20 && r != '\n') || r == 0x7f || untrusted.Hidden(r) {
			return strings.ToValidUTF8(string(r), "?")
		}
	}
	return ""
}

func hostileCmd(t *testing.T) (*dlqCmd, *dlqTestPublisher, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	cmd, s, pub, out, errb := dlqTestCmd(t)
	dl := dlqtest.Letter("h1", "hhhhhhhhhhhhhhhh", "orders"+hostile, "ship"+hostile, 5*time.Minute)
	dl.Error = "boom " + hostile
	dl.ErrorType = "*" + hostile
	dl.Metadata["key"+hostile] = "value" + hostile
	dl.Payload = []byte("{\"line\": 1,\n \"evil\": \"" + hostile + "\"}")
	if _, err := s.Add(context.Background(), dl); err != nil {
		t.Fatal(err)
	}
	return cmd, pub, out, errb
}

func TestDLQOutputIsTerminalSafe(t *testing.T) {
	for _, args := range [][]string{
		{"groups"}, {"groups", "--by", "topic"}, {"groups", "--by", "handler"},
		{"list"}, {"show", "h1"}, {"replay", "--id", "h1", "--dry-run"}, {"replay", "--id", "h1", "--rate", "0"},
		{"prune", "--max-age", "1m", "--force", "--dry-run"},
		{"--json", "groups"}, {"--json", "list"}, {"--json", "show", "h1"}, {"--json", "replay", "--id", "h1", "--rate", "0"},
		{"--json", "prune", "--max-age", "1m", "--force", "--dry-run"},
		{"show", "missing" + hostile},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			cmd, pub, out, errb := hostileCmd(t)
			pub.fail = errors.New("broker says " + hostile)
			cmd.run(context.Background(), args)
			if !strings.Contains(out.String()+errb.String(), "pwned") && !slices.Contains(args, "prune") {
				t.Errorf("the hostile letter is not in the output:\n%s\n%s", out, errb)
			}
			if c := terminalActive(out.String()); c != "" {
				t.Errorf("stdout carries %q:\n%q", c, out)
			}
			if c := terminalActive(errb.String()); c != "" {
				t.Errorf("stderr carries %q:\n%q", c, errb)
			}
		})
	}
}

func TestDLQJSONKeepsTheBytes(t *testing.T) {
	cmd, _, out, _ := hostileCmd(t)
	if code := cmd.run(context.Background(), []string{"--json", "show", "h1"}); code != 0 {
		t.Fatalf("exit %d", code)
	}
	var got dlqops.Record
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Error != "boom "+hostile || got.Metadata["key"+hostile] != "value"+hostile {
		t.Errorf("escaping changed the values: %q %q", got.Error, got.Metadata)
	}
}

func TestDLQPruneDryRunDeletesNothing(t *testing.T) {
	cmd, s, _, out, _ := dlqTestCmd(t)
	if code := cmd.run(context.Background(), []string{"--json", "prune", "--max-age", "1s", "--force", "--dry-run"}); code != 0 {
		t.Fatalf("exit %d", code)
	}
	var got struct {
		DryRun      bool `json:"dry_run"`
		WouldDelete int  `json:"would_delete"`
		Aged        int  `json:"aged"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !got.DryRun || got.WouldDelete != 4 || got.Aged != 4 {
		t.Errorf("got %+v want a dry run of 4", got)
	}
	if left, _ := s.List(context.Background(), dlqops.Filter{}); len(left) != 4 {
		t.Errorf("the dry run deleted letters: %d left of 4", len(left))
	}
}

func TestDLQPruneFloorAppliesToTheConfig(t *testing.T) {
	cmd, s, _, _, errb := dlqTestCmd(t)
	cmd.configPath = dlqWriteConfig(t, strings.Replace(dlqTestConfig, `test"}`, `test", retention: {max_age: 30s}}`, 1))
	if code := cmd.run(context.Background(), []string{"prune"}); code != 2 || !strings.Contains(errb.String(), "store.retention.max_age 30s is under 1h") {
		t.Errorf("exit %d, stderr %s", code, errb)
	}
	if left, _ := s.List(context.Background(), dlqops.Filter{}); len(left) != 4 {
		t.Errorf("refused prune deleted letters: %d left", len(left))
	}
}

// TestDocsStateThePruneFloor: the usage text, docs/OPERATIONS.md and the
// README state minPruneAge.
func TestDocsStateThePruneFloor(t *testing.T) {
	floor := "under " + shortDur(minPruneAge)
	if !strings.Contains(dlqUsage, "a max age "+floor+" needs --force") {
		t.Errorf("dlq usage does not say %q", floor)
	}
	for _, doc := range []string{"../../docs/OPERATIONS.md", "../../README.md"} {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.Join(strings.Fields(string(b)), " ")
		if n := strings.Count(text, "max age "+floor); n == 0 {
			t.Errorf("%s does not state the prune floor (%q)", doc, "max age "+floor)
		}
	}
}
