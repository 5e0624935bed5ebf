package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
)

// writeJSON prints v as indented JSON with the characters a terminal
// acts on escaped (jsonSafe).
func writeJSON(w io.Writer, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := w.Write(jsonSafe(buf.Bytes()))
	return err
}

// safe is termSafe for one-line output.
func safe(s string) string { return termSafe(s, false) }

// cut shortens s to n runes for a table cell, on one line, made safe for
// a terminal.
func cut(s string, n int) string {
	s = safe(strings.Join(strings.Fields(s), " "))
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

func age(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < 48*time.Hour:
		return d.Round(time.Minute).String()
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

func writeGroups(w io.Writer, groups []dlqops.Group, window time.Duration, now time.Time) {
	if len(groups) == 0 {
		fmt.Fprintln(w, "no dead letters")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "GROUP\tTOTAL\tNEW\tREPLAYED\tARCHIVED\tLAST %s\tFIRST SEEN\tLAST SEEN\tOLDEST NEW\tTOPICS\tHANDLERS\tSAMPLE ERROR\n", shortDur(window))
	for _, g := range groups {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", cut(g.Key, 64), g.Count, g.New, g.Replayed, g.Archived,
			g.InWindow, stamp(g.FirstSeen), stamp(g.LastSeen), age(now, g.OldestNew),
			cut(strings.Join(g.Topics, ","), 30), cut(strings.Join(g.Handlers, ","), 30), cut(g.SampleError, 60))
	}
	_ = tw.Flush()
}

func writeList(w io.Writer, letters []dlqops.Record) {
	if len(letters) == 0 {
		fmt.Fprintln(w, "no dead letters")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tGROUP\tTOPIC\tHANDLER\tFAILED AT\tREPLAYS\tERROR")
	for _, dl := range letters {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", safe(dl.ID), safe(string(dl.Status)), safe(dl.Fingerprint), cut(dl.OriginalTopic, 30),
			cut(dl.Handler, 30), stamp(dl.FailedAt), dl.ReplayCount, cut(dl.Error, 60))
	}
	_ = tw.Flush()
}

func writeShow(w io.Writer, dl dlqops.Record) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, safe(v)) }
	row("id", dl.ID)
	row("status", string(dl.Status))
	if dl.Reason != "" {
		row("reason", dl.Reason)
	}
	if dl.Truncated != "" {
		row("truncated", dl.Truncated)
	}
	row("group", dl.Fingerprint)
	row("original topic", orDash(dl.OriginalTopic))
	row("dlq topic", dl.DLQTopic)
	row("handler", orDash(dl.Handler))
	row("error class", orDash(dl.ErrorClass))
	row("error type", orDash(dl.ErrorType))
	row("error", orDash(dl.Error))
	if loc := dl.Metadata[dlq.KeyCodeLocation]; loc != "" {
		row("code location", loc)
	}
	row("attempts", fmt.Sprint(dl.Attempts))
	row("replay count", fmt.Sprint(dl.ReplayCount))
	row("failed at", stamp(dl.FailedAt))
	row("received at", stamp(dl.ReceivedAt))
	row("original uuid", dl.OriginalUUID)
	if dl.Status == dlqops.StatusReplayed {
		row("replayed at", stamp(dl.ReplayedAt))
		row("replay uuid", dl.ReplayUUID)
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "metadata:")
	for _, k := range slices.Sorted(maps.Keys(dl.Metadata)) {
		if k == dlq.KeyStack {
			continue // printed below, one frame a line
		}
		fmt.Fprintf(w, "  %s = %q\n", safe(k), dl.Metadata[k]) // %q escapes what a terminal acts on
	}
	writeStack(w, dl.Metadata[dlq.KeyStack])
	fmt.Fprintf(w, "payload (%d bytes):\n", len(dl.Payload))
	if utf8.Valid(dl.Payload) {
		fmt.Fprintf(w, "  %s\n", strings.ReplaceAll(termSafe(string(dl.Payload), true), "\n", "\n  "))
	} else {
		fmt.Fprintf(w, "  %x\n", dl.Payload)
	}
}

// shortDur formats 1h0m0s as 1h, 1m30s as 1m30s.
func shortDur(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func writeReport(w io.Writer, rep dlqops.ReplayReport) {
	verb := "replayed"
	if rep.DryRun {
		verb = "would replay"
	}
	fmt.Fprintf(w, "%s %d, held %d, failed %d (of %d)\n", verb, rep.Replayed, rep.Held, rep.Failed, rep.Processed)
	if len(rep.Items) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tGROUP\tTOPIC\tOUTCOME\tREASON")
	for _, it := range rep.Items {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", safe(it.ID), safe(it.Group), safe(orDash(it.Topic)), safe(string(it.Outcome)), cut(it.Reason, 80))
	}
	_ = tw.Flush()
	if rep.Truncated {
		fmt.Fprintf(w, "(first %d items shown)\n", len(rep.Items))
	}
}

// writePrunePreview prints what a prune would delete: the total, the
// groups of the letters past the max age, and how many more the max count
// would take.
func writePrunePreview(w io.Writer, p dlqops.PrunePreview, r dlqops.Retention) {
	fmt.Fprintf(w, "would delete %d dead letters (dry run, nothing deleted)\n", p.Total())
	if r.MaxAge > 0 {
		fmt.Fprintf(w, "%d failed more than %s ago", p.Aged, shortDur(r.MaxAge))
		if len(p.ByAge) == 0 {
			fmt.Fprintln(w)
		} else {
			fmt.Fprintln(w, ":")
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "  GROUP\tCOUNT\tLAST SEEN\tTOPICS\tSAMPLE ERROR")
			for _, g := range p.ByAge {
				fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\t%s\n", cut(g.Key, 64), g.Count, stamp(g.LastSeen),
					cut(strings.Join(g.Topics, ","), 30), cut(g.SampleError, 60))
			}
			_ = tw.Flush()
		}
	}
	if r.MaxCount > 0 {
		fmt.Fprintf(w, "%d more, the oldest, to keep at most %d\n", p.OverCount, r.MaxCount)
	}
}

type jsonReplay struct {
	dlqops.ReplayReport
	Error string `json:"error,omitempty"`
}

func jsonReport(rep dlqops.ReplayReport, err error) jsonReplay {
	out := jsonReplay{ReplayReport: rep}
	if err != nil {
		out.Error = err.Error()
	}
	return out
}

// writeStack prints a panic's stack (levee_stack) as a block, a line per
// line of the stack, tabs as spaces, made safe for a terminal. A letter
// without one prints nothing.
func writeStack(w io.Writer, stack string) {
	if stack == "" {
		return
	}
	fmt.Fprintf(w, "stack (%s, %d bytes, at most %d):\n", dlq.KeyStack, len(stack), dlq.MaxStackLength)
	stack = termSafe(strings.ReplaceAll(strings.TrimRight(stack, "\n"), "\t", "    "), true)
	fmt.Fprintf(w, "  %s\n", strings.ReplaceAll(stack, "\n", "\n  "))
}

// shortUsage is what a usage error prints after its message: the usage of
// cmd alone (with the selection flags when it takes them), or the list of
// commands when cmd is "" or unknown, and where the rest is. The whole
// dlqUsage would push the error itself off the screen.
func shortUsage(cmd string) string {
	lines := strings.Split(dlqUsage, "\n")
	var b strings.Builder
	b.WriteString(lines[0] + "\n")
	var block []string
	if cmd != "" {
		block = usageLines(lines, "  "+cmd+" ")
	}
	if block == nil {
		b.WriteString("commands: groups, list, show, replay, archive, prune, serve\n")
	} else {
		b.WriteString("\n" + strings.Join(block, "\n") + "\n")
		if strings.Contains(strings.Join(block, " "), "[selection]") {
			b.WriteString("\n" + strings.Join(usageLines(lines, "selection: "), "\n") + "\n")
		}
	}
	fmt.Fprintf(&b, "\n'levee dlq help' shows every command; 'levee dlq %s -h' lists %s flags with their defaults.\n",
		cmdOr(cmd, block != nil), flagsOf(block != nil))
	return b.String()
}

// usageLines is the line of lines that starts with head and the indented
// lines after it, or nil.
func usageLines(lines []string, head string) []string {
	for i, l := range lines {
		if !strings.HasPrefix(l, head) {
			continue
		}
		block := []string{l}
		for _, next := range lines[i+1:] {
			if !strings.HasPrefix(next, "           ") {
				break
			}
			block = append(block, next)
		}
		return block
	}
	return nil
}

func cmdOr(cmd string, known bool) string {
	if known {
		return cmd
	}
	return "COMMAND"
}

func flagsOf(known bool) string {
	if known {
		return "its"
	}
	return "a command's"
}
