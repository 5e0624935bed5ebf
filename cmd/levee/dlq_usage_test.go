package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// dlqCommands are the commands of `levee dlq` and whether they take the
// selection flags.
var dlqCommands = map[string]bool{"groups": true, "list": true, "show": false, "replay": true, "archive": true, "prune": false, "serve": false}

// cmdFlag is one flag as `levee dlq COMMAND -h` prints it.
type cmdFlag struct{ def, usage string }

// commandFlags runs `levee dlq cmd -h` and reads the flags it lists,
// with their defaults (flag.PrintDefaults' format).
func commandFlags(t *testing.T, cmd string) map[string]cmdFlag {
	t.Helper()
	var out, errb bytes.Buffer
	c := &dlqCmd{stdout: &out, stderr: &errb, now: time.Now}
	if code := c.run(context.Background(), []string{cmd, "-h"}); code != 0 {
		t.Fatalf("levee dlq %s -h: exit %d, stderr %q", cmd, code, errb.String())
	}
	_, list, ok := strings.Cut(out.String(), "\nflags of "+cmd+":\n")
	if !ok {
		t.Fatalf("levee dlq %s -h does not list the command's flags:\n%s", cmd, out.String())
	}
	flags := map[string]cmdFlag{}
	entry := regexp.MustCompile(`(?m)^  -(\S+)(?: \S+)?\n((?:    \t.*\n)+)`)
	for _, m := range entry.FindAllStringSubmatch(list, -1) {
		usage := strings.Join(strings.Fields(m[2]), " ")
		var def string
		if d := regexp.MustCompile(`\(default (?:"([^"]*)"|([^:"][^)]*))\)$`).FindStringSubmatch(usage); d != nil {
			def = d[1] + d[2]
		}
		flags[m[1]] = cmdFlag{def: def, usage: usage}
	}
	if len(flags) < 2 {
		t.Fatalf("levee dlq %s -h: read only %d flags from:\n%s", cmd, len(flags), list)
	}
	return flags
}

// usageBlock is the part of dlqUsage that documents cmd: its line and
// the indented lines after it.
func usageBlock(t *testing.T, head string) string {
	t.Helper()
	block := usageLines(strings.Split(dlqUsage, "\n"), head)
	if block == nil {
		t.Fatalf("dlqUsage has no line starting %q", head)
	}
	return strings.Join(block, "\n")
}

// TestUsageErrorsShowTheCommand: a usage error prints its message, then
// the usage of its command alone (with the selection flags when it takes
// them), not the whole usage that would push the message off the screen;
// before a command, or for an unknown one, the list of every command.
func TestUsageErrorsShowTheCommand(t *testing.T) {
	for cmd, selection := range dlqCommands {
		var out, errb bytes.Buffer
		c := &dlqCmd{stdout: &out, stderr: &errb, now: time.Now}
		if code := c.run(context.Background(), []string{cmd, "--no-such-flag"}); code != 2 {
			t.Fatalf("%s --no-such-flag: exit %d, want 2", cmd, code)
		}
		got := errb.String()
		if !strings.HasPrefix(got, "levee dlq: "+cmd+": flag provided but not defined") {
			t.Errorf("%s: the error is not first:\n%s", cmd, got)
		}
		if block := usageBlock(t, "  "+cmd+" "); !strings.Contains(got, block) {
			t.Errorf("%s: the command's usage %q is missing:\n%s", cmd, block, got)
		}
		if sel := usageBlock(t, "selection: "); strings.Contains(got, sel) != selection {
			t.Errorf("%s: shows the selection flags: %v, want %v:\n%s", cmd, !selection, selection, got)
		}
		for other := range dlqCommands {
			if other != cmd && strings.Contains(got, usageBlock(t, "  "+other+" ")) {
				t.Errorf("%s: shows the usage of %s too:\n%s", cmd, other, got)
			}
		}
		if !strings.Contains(got, "levee dlq "+cmd+" -h") {
			t.Errorf("%s: does not say where its flags are:\n%s", cmd, got)
		}
	}
	for _, args := range [][]string{{"frob"}, {"--no-such-flag", "list"}} {
		var out, errb bytes.Buffer
		c := &dlqCmd{stdout: &out, stderr: &errb, now: time.Now}
		if code := c.run(context.Background(), args); code != 2 {
			t.Fatalf("%v: exit %d, want 2", args, code)
		}
		_, list, ok := strings.Cut(errb.String(), "\ncommands: ")
		list, _, _ = strings.Cut(list, "\n")
		names := strings.Split(list, ", ")
		if !ok || len(names) != len(dlqCommands) {
			t.Errorf("%v: lists commands %q, want the %d of dlqCommands:\n%s", args, list, len(dlqCommands), errb.String())
		}
		for _, n := range names {
			if _, known := dlqCommands[n]; !known {
				t.Errorf("%v: lists %q, not a command", args, n)
			}
		}
	}
}

// bracketed matches "[--name VALUE" in a usage line.
var bracketed = regexp.MustCompile(`\[--([a-z-]+) ([^\]\[ ]+)`)

// checkShownDefault: a value shown beside a flag ("[--rate 50/s]") reads
// as its default, so it must be the default: the flag's, or the one its
// description ends on ("(default console.listen, else 127.0.0.1:8080)").
// Placeholders (N, ID, URL), alternatives (fingerprint|topic|handler: the
// default, when there is one, must be among them) and lists (T...) are
// not defaults.
func checkShownDefault(t *testing.T, where, cmd, name, shown string, f cmdFlag) {
	t.Helper()
	switch {
	case shown == strings.ToUpper(shown) && !strings.ContainsAny(shown, "0123456789"):
		return // a placeholder: N, T, ID, URL, D
	case strings.Contains(shown, "|"):
		if f.def != "" && !strings.Contains("|"+shown+"|", "|"+f.def+"|") {
			t.Errorf("%s: %s --%s shows %q, which does not include its default %q", where, cmd, name, shown, f.def)
		}
		return
	}
	if shown == f.def || shown == "0" && f.def == "" { // PrintDefaults leaves out a zero default
		return
	}
	if a, err := time.ParseDuration(shown); err == nil {
		if b, err := time.ParseDuration(f.def); err == nil && a == b {
			return
		}
	}
	if m := regexp.MustCompile(`\(default [^)]*?(\S+)\)$`).FindStringSubmatch(f.usage); m != nil && m[1] == shown {
		return
	}
	t.Errorf("%s: %s --%s shows %q as if it were the default; the default is %q (%s)", where, cmd, name, shown, f.def, f.usage)
}

// TestDLQUsageMatchesFlags: the usage of `levee dlq` names every flag of
// every command (`--order` of groups was missing, though the runbook uses
// it), and a value it shows beside a flag is that flag's default (it
// showed `--waves 1,2,5,20,50` for a default of 1,2,5,20,50,100, and
// `--max-age 720h` and `--status new` for flags whose default is the
// store's retention and no filter); so do the `levee dlq` command lines
// of the docs.
func TestDLQUsageMatchesFlags(t *testing.T) {
	selection := usageBlock(t, "selection:")
	all := map[string]map[string]cmdFlag{}
	for cmd, takesSelection := range dlqCommands {
		flags := commandFlags(t, cmd)
		all[cmd] = flags
		block := usageBlock(t, "  "+cmd+" ")
		for name, f := range flags {
			switch {
			case name == "config" || name == "json":
				continue // levee dlq [--config levee.yaml] [--json]: the first line
			case strings.Contains(block, "--"+name):
			case takesSelection && strings.Contains(selection, "--"+name):
			default:
				t.Errorf("usage of %s does not name --%s (%s)", cmd, name, f.usage)
				continue
			}
		}
		text := block
		if takesSelection {
			text += "\n" + selection
		}
		for _, m := range bracketed.FindAllStringSubmatch(text, -1) {
			f, ok := flags[m[1]]
			if !ok {
				t.Errorf("usage of %s shows --%s, which %s does not take", cmd, m[1], cmd)
				continue
			}
			checkShownDefault(t, "usage", cmd, m[1], m[2], f)
		}
	}
	checked := 0
	for _, doc := range []string{"../../README.md", "../../docs/OPERATIONS.md", "../../docs/CONSOLE.md", "../../docs/DLQ.md"} {
		raw, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(raw), "\n") {
			m := regexp.MustCompile(`levee dlq (?:--config \S+ )?([a-z]+)\b`).FindStringSubmatch(line)
			if m == nil || all[m[1]] == nil {
				continue
			}
			for _, b := range bracketed.FindAllStringSubmatch(line[strings.Index(line, m[0]):], -1) {
				f, ok := all[m[1]][b[1]]
				if !ok {
					t.Errorf("%s: levee dlq %s shows --%s, which it does not take", doc, m[1], b[1])
					continue
				}
				checked++
				checkShownDefault(t, doc, m[1], b[1], b[2], f)
			}
		}
	}
	if checked < 5 {
		t.Fatalf("checked only %d bracketed flags in the docs' levee dlq lines", checked)
	}
}

// TestReplayHelpSaysItTakesNoStatus: replay refuses --status, so its -h
// does not list the statuses as if it selected by them.
func TestReplayHelpSaysItTakesNoStatus(t *testing.T) {
	var out, errb bytes.Buffer
	c := &dlqCmd{stdout: &out, stderr: &errb, now: time.Now}
	if code := c.run(context.Background(), []string{"replay", "-h"}); code != 0 {
		t.Fatalf("replay -h: exit %d, want 0\n%s", code, errb.String())
	}
	_, help, _ := strings.Cut(out.String(), "  -status string\n")
	help, _, _ = strings.Cut(help, "\n")
	if got := strings.TrimSpace(help); got != replayStatusUsage {
		t.Errorf("replay -h says of -status %q, want %q", got, replayStatusUsage)
	}
	code := c.run(context.Background(), []string{"replay", "--all", "--status", "new"})
	if code != 2 || !strings.Contains(errb.String(), "--status does not apply") {
		t.Errorf("replay --status: exit %d, want 2 and the refusal:\n%s", code, errb.String())
	}
}
