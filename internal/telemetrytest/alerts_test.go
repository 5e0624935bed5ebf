package telemetrytest_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/levee-dev/levee/dlq/dlqops"
)

// alertRule is what TestAlertRunbooksStateTheirRules reads of one rule.
type alertRule struct {
	name, file, forMinutes, threshold, runbook string
}

// alertRules reads every rule of docs/alerts/*.rules.yml: its name, its
// for in minutes ("" when none), the number its expression compares with
// last (> N), and its runbook annotation.
func alertRules(t *testing.T) []alertRule {
	t.Helper()
	files, err := filepath.Glob("../../docs/alerts/*.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	var out []alertRule
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		parts := regexp.MustCompile(`(?m)^\s+- alert: `).Split(string(raw), -1)
		for _, p := range parts[1:] {
			r := alertRule{name: strings.Fields(p)[0], file: filepath.Base(f)}
			if m := regexp.MustCompile(`(?m)^\s+for: (\d+)m$`).FindStringSubmatch(p); m != nil {
				r.forMinutes = m[1]
			}
			if m := regexp.MustCompile(`(?s)expr:.*>\s*([0-9]+)\s*\n\s+(?:for|labels):`).FindStringSubmatch(p); m != nil {
				r.threshold = m[1]
			}
			if m := regexp.MustCompile(`runbook: "([^"]+)"`).FindStringSubmatch(p); m != nil {
				r.runbook = m[1]
			}
			out = append(out, r)
		}
	}
	return out
}

// anchor is GitHub's anchor of a Markdown heading.
func anchor(heading string) string {
	h := strings.ToLower(strings.TrimSpace(strings.TrimLeft(heading, "#")))
	h = regexp.MustCompile(`[^a-z0-9 _-]`).ReplaceAllString(h, "")
	return strings.ReplaceAll(h, " ", "-")
}

// TestAlertRunbooksStateTheirRules: every alert rule's runbook annotation
// points at a heading of the doc it names, whose section names the alert;
// where the section's summary (its first italic sentence) states a
// duration ("for N minutes") or a threshold ("more than N"), they are the
// rule's for and the number its expression compares with. A runbook that
// says 5 minutes for a rule that waits 10 misleads the responder about
// how long the problem has lasted.
func TestAlertRunbooksStateTheirRules(t *testing.T) {
	rules := alertRules(t)
	if len(rules) < 10 {
		t.Fatalf("read only %d alert rules", len(rules))
	}
	for _, r := range rules {
		doc, frag, ok := strings.Cut(r.runbook, "#")
		if !ok || !strings.HasPrefix(doc, "docs/") {
			t.Errorf("%s (%s): runbook %q is not docs/<file>#<anchor>", r.name, r.file, r.runbook)
			continue
		}
		raw, err := os.ReadFile("../../" + doc)
		if err != nil {
			t.Errorf("%s: runbook %s: %v", r.name, r.runbook, err)
			continue
		}
		var section string
		lines := strings.Split(string(raw), "\n")
		for i, l := range lines {
			if !strings.HasPrefix(l, "#") || anchor(l) != frag {
				continue
			}
			level := len(l) - len(strings.TrimLeft(l, "#"))
			end := len(lines)
			for j := i + 1; j < len(lines); j++ {
				if h := lines[j]; strings.HasPrefix(h, "#") && len(h)-len(strings.TrimLeft(h, "#")) <= level {
					end = j
					break
				}
			}
			section = strings.Join(lines[i:end], "\n")
			break
		}
		if section == "" {
			t.Errorf("%s: runbook %s: no heading with that anchor", r.name, r.runbook)
			continue
		}
		if !strings.Contains(section, r.name) {
			t.Errorf("%s: the section %s does not name the alert", r.name, r.runbook)
		}
		summary := section
		if i := strings.Index(section, "**"+r.name+"**"); i >= 0 {
			// A shared runbook: the alert's own item, to the next one.
			summary = section[i+len(r.name)+4:]
			if j := regexp.MustCompile(`\n(- |\n)`).FindStringIndex(summary); j != nil {
				summary = summary[:j[0]]
			}
		} else if m := regexp.MustCompile(`(?s)\*([A-Z][^*]+)\*`).FindStringSubmatch(section); m != nil {
			summary = m[1]
		}
		summary = strings.Join(strings.Fields(summary), " ")
		if m := regexp.MustCompile(`\bfor (\d+) minutes\b`).FindStringSubmatch(summary); m != nil && m[1] != r.forMinutes {
			t.Errorf("%s: %s says %q, the rule's for is %sm", r.name, r.runbook, m[0], r.forMinutes)
		}
		if m := regexp.MustCompile(`(?i)\bmore than (\d+)\b`).FindStringSubmatch(summary); m != nil && m[1] != r.threshold {
			t.Errorf("%s: %s says %q, the rule compares with %s", r.name, r.runbook, m[0], r.threshold)
		}
	}
}

// TestAlertRulesQueryEmittedSeries: every levee_* series an alert rule in
// docs/alerts queries is one a Levee instrument is scraped as (a rule over
// a name nothing exports never fires). TestDashboardSeriesExported checks
// promName against the real exporter.
func TestAlertRulesQueryEmittedSeries(t *testing.T) {
	names := promNames(t)
	files, err := filepath.Glob("../../docs/alerts/*.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	series := regexp.MustCompile(`levee_[a-z_]+`)
	expr := regexp.MustCompile(`(?m)^\s+expr: (\|\n(?:[ \t]{10,}.*\n)+|.*$)`)
	checked := 0
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range expr.FindAllString(string(raw), -1) {
			for _, s := range series.FindAllString(e, -1) {
				checked++
				if !names[s] {
					t.Errorf("%s queries %s, which no Levee instrument is scraped as", f, s)
				}
			}
		}
	}
	if checked < 10 {
		t.Fatalf("checked only %d series in %v", checked, files)
	}
}

// TestBreakerAlertDelayDocumented: the delay docs/OPERATIONS.md and the
// alert's own description state for LeveeBreakerOpen ("5 to 6 minutes")
// is the rule's for plus one evaluation interval of its promtool tests,
// which pin it.
func TestBreakerAlertDelayDocumented(t *testing.T) {
	read := func(p string) string {
		raw, err := os.ReadFile("../../" + p)
		if err != nil {
			t.Fatal(err)
		}
		return string(raw)
	}
	rule := read("docs/alerts/levee-breaker.rules.yml")
	forM := regexp.MustCompile(`(?m)^\s+for: (\d+)m$`).FindStringSubmatch(rule)
	evalM := regexp.MustCompile(`(?m)^evaluation_interval: (\d+)m$`).FindStringSubmatch(read("docs/alerts/levee-breaker.rules.test.yml"))
	if forM == nil || evalM == nil {
		t.Fatalf("LeveeBreakerOpen: no for (%v) or no evaluation interval in its tests (%v)", forM, evalM)
	}
	var f, e int
	if _, err := fmt.Sscan(forM[1], &f); err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Sscan(evalM[1], &e); err != nil {
		t.Fatal(err)
	}
	span := fmt.Sprintf("%d to %d minutes", f, f+e)
	stated := map[string]string{"docs/OPERATIONS.md": "fires " + span + " after", "the rule's description": "opened " + span + " ago"}
	ops := read("docs/OPERATIONS.md")
	i := strings.Index(ops, "### LeveeBreakerOpen")
	if i < 0 {
		t.Fatal("docs/OPERATIONS.md has no LeveeBreakerOpen section")
	}
	section := ops[i:]
	if j := strings.Index(section[1:], "\n## "); j >= 0 {
		section = section[:j]
	}
	for what, text := range map[string]string{"docs/OPERATIONS.md": section, "the rule's description": rule} {
		if !strings.Contains(strings.Join(strings.Fields(text), " "), stated[what]) {
			t.Errorf("%s does not state the delay: %q (for: %dm, evaluated every %dm)", what, stated[what], f, e)
		}
	}
	if !strings.Contains(section, fmt.Sprintf("`for: %dm`", f)) {
		t.Errorf("docs/OPERATIONS.md does not name the rule's `for: %dm`", f)
	}
}

// TestReplayHeldAlertNamesEveryReason: the LeveeDLQReplayHeld rule's
// description and its runbook name every reason a replay holds a letter
// back (each dlqops sentinel a held letter's reason carries); the rule
// named three of the five, so a responder paged for a "replay topic not
// allowed" or an "already succeeded" hold read that it could not be one.
func TestReplayHeldAlertNamesEveryReason(t *testing.T) {
	reasons := map[error]string{ // the sentinel, and the words of it the texts must carry
		dlqops.ErrMaxReplays:       "max replays",
		dlqops.ErrRevalidation:     "re-validation",
		dlqops.ErrNoOriginalTopic:  "original topic",
		dlqops.ErrTopicNotAllowed:  "replay topic not allowed",
		dlqops.ErrAlreadySucceeded: "already succeeded",
	}
	raw, err := os.ReadFile("../../docs/alerts/levee-dlq.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	rule := string(raw)
	i := strings.Index(rule, "alert: LeveeDLQReplayHeld")
	if i < 0 {
		t.Fatal("no LeveeDLQReplayHeld rule")
	}
	rule = rule[i:]
	if j := strings.Index(rule[1:], "- alert:"); j >= 0 {
		rule = rule[:j]
	}
	ops, err := os.ReadFile("../../docs/OPERATIONS.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(ops)
	section = section[strings.Index(section, "### LeveeDLQReplayHeld"):]
	section = strings.Join(strings.Fields(section[:strings.Index(section[4:], "\n### ")+4]), " ")
	for sentinel, words := range reasons {
		if !strings.Contains(sentinel.Error(), words) {
			t.Fatalf("%q is not in the reason %q", words, sentinel)
		}
		if !strings.Contains(rule, words) {
			t.Errorf("the LeveeDLQReplayHeld rule does not name %q", words)
		}
		if !strings.Contains(section, words) {
			t.Errorf("docs/OPERATIONS.md#leveedlqreplayheld does not name %q", words)
		}
	}
}

// TestAlertRulesUseExportedLabels: every label an alert rule in
// docs/alerts groups, joins or matches on (by, on, ignoring, a matcher,
// label_replace's source) is an attribute of a series the rule queries
// (docs/TELEMETRY.md's instrument tables, checked against what the
// packages record by checkAttrsDocumented), or one Prometheus adds at the
// scrape (instance, job), or one the rule makes with label_replace; a
// matcher's value is one the attribute takes where the table lists them.
// A rule grouping by a label nothing exports fires with the label empty,
// and one matching on it never fires.
func TestAlertRulesUseExportedLabels(t *testing.T) {
	attrs := documentedAttrs(t)
	inv := &inventory{got: map[string]instrument{}}
	buildEverything(t, inv)
	instr := map[string]string{} // Prometheus series -> instrument
	for n, in := range inv.got {
		p := promName(n, in)
		for _, s := range []string{"", "_bucket", "_sum", "_count"} {
			instr[p+s] = n
		}
	}
	files, err := filepath.Glob("../../docs/alerts/*.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	exprRe := regexp.MustCompile(`(?m)^\s+expr: (\|\n(?:[ \t]{10,}.*\n)+|.*$)`)
	grouping := regexp.MustCompile(`\b(?:by|on|ignoring)\s*\(([^)]*)\)`)
	matcher := regexp.MustCompile(`([a-zA-Z_]+)\s*(?:=~|!~|!=|=)\s*"([^"]*)"`)
	relabel := regexp.MustCompile(`label_replace\([^,]+,\s*"([a-z_]+)",\s*"[^"]*",\s*"([a-z_]+)"`)
	checked, exprs := 0, 0
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range exprRe.FindAllString(string(raw), -1) {
			exprs++
			allowed := map[string]map[string]bool{"instance": nil, "job": nil}
			for _, s := range regexp.MustCompile(`levee_[a-z_]+`).FindAllString(e, -1) {
				for k, vals := range attrs[instr[s]] {
					allowed[k] = vals
				}
			}
			var used []string
			for _, m := range relabel.FindAllStringSubmatch(e, -1) {
				used = append(used, m[2])
				allowed[m[1]] = nil
			}
			for _, m := range grouping.FindAllStringSubmatch(e, -1) {
				for _, l := range strings.Split(m[1], ",") {
					used = append(used, strings.TrimSpace(l))
				}
			}
			for _, m := range matcher.FindAllStringSubmatch(e, -1) {
				if m[1] == "label_replace" {
					continue
				}
				used = append(used, m[1])
				if vals, ok := allowed[m[1]]; ok && vals != nil && !vals[m[2]] {
					t.Errorf("%s: %s matches %s=%q, which it never takes (docs/TELEMETRY.md: %v)",
						filepath.Base(f), strings.TrimSpace(e), m[1], m[2], keysOf(vals))
				}
			}
			for _, l := range used {
				checked++
				if _, ok := allowed[l]; !ok {
					t.Errorf("%s: %s uses label %q, which none of its series has (they have %v)",
						filepath.Base(f), strings.TrimSpace(e), l, keysOf(allowed))
				}
			}
		}
	}
	if checked < 10 {
		t.Fatalf("checked only %d labels", checked)
	}
	t.Logf("checked %d labels in %d expressions", checked, exprs)
}
