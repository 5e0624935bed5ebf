//go:build integration

package console

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/dlq/dlqtest"
	"github.com/levee-dev/levee/validate"
)

// TestBrowser drives the console in headless Chromium: the groups, a
// group, a hostile letter (shown as text), the search; a canary replay of
// a group whose downstream still fails halts after its first wave with the
// rest untouched; once the downstream is fixed a second one finishes.
// LEVEE_SCREENSHOTS=dir keeps a PNG of each page there (docs/ holds them).
func TestBrowser(t *testing.T) {
	bin := chromium(t)
	const total = 30
	st := dlqops.NewMemStore()
	now := time.Now().UTC()
	for i := range total {
		dl := dlqtest.Letter(fmt.Sprintf("order-%02d", i), "3f9a2c1e8b7d6054", "orders", "ship", 0)
		dl.FailedAt = now.Add(-time.Duration(total-i) * 7 * time.Minute)
		dl.ReceivedAt = dl.FailedAt
		dl.Error = "inventory service: 503 Service Unavailable"
		dl.Payload = []byte(fmt.Sprintf(`{"order_id":"o-%d","items":[{"sku":"A-1","qty":2}],"total":19.9}`, i))
		dl.Metadata["traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		mustAdd(t, st, dl)
	}
	for i := range 6 {
		dl := dlqtest.Letter(fmt.Sprintf("pay-%02d", i), "77c0ffee12345678", "payments", "charge", 0)
		dl.FailedAt = now.Add(-time.Duration(i) * 50 * time.Minute)
		dl.ReceivedAt = dl.FailedAt
		dl.ErrorClass, dl.Error = "validation", "payload: /amount: must be >= 0"
		mustAdd(t, st, dl)
	}
	for i := range 3 {
		dl := dlqtest.Letter(fmt.Sprintf("panic-%d", i), "5a1c0de5ca1ab1e0", "invoices", "render", 0)
		dl.FailedAt = now.Add(-time.Duration(i) * 3 * time.Hour)
		dl.ReceivedAt = dl.FailedAt
		dl.ErrorClass, dl.ErrorType, dl.Error = "panic", "*levee.PanicError", "panic: runtime error: index out of range [3] with length 3"
		dl.Metadata[dlq.KeyStack] = "goroutine 42 [running]:\nexample.com/invoices.(*Renderer).line(...)\n\t/src/invoices/render.go:88 +0x1d4\nexample.com/invoices.Handle({0xc0001a2000, 0x3})\n\t/src/invoices/handler.go:31 +0x9a"
		mustAdd(t, st, dl)
	}
	h := dlqtest.Letter("hostile", "9e1d5b3a0c2f4e6d", "orders", "ship", 0)
	h.FailedAt = now.Add(-time.Minute)
	h.ReceivedAt = h.FailedAt
	h.Error, h.Payload = hostile, []byte(hostile)
	h.Metadata["x-note"] = hostile
	mustAdd(t, st, h)
	down, err := dlqtest.NewDownstream(st)
	if err != nil {
		t.Fatal(err)
	}
	// the topic's JSON Schema (the `schemas:` section's registry)
	schemas, err := validate.Compile(map[string][]byte{"payments": []byte(`{"type": "object", "required": ["amount"],
		"properties": {"amount": {"type": "number", "minimum": 0}}}`)})
	if err != nil {
		t.Fatal(err)
	}
	token := "0123456789abcdef-e2e"
	srv, err := New(Config{Tokens: []Token{{Name: "oncall", Token: token, Role: RoleAdmin}},
		TraceLink: "http://jaeger.local:16686/trace/{trace_id}",
		Canary:    Canary{Waves: []int{1, 2, 5, 20}, Wait: 300 * time.Millisecond}},
		Deps{Store: st, Publisher: down, Validator: schemas.Validate})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	hs := httptest.NewServer(srv)
	defer hs.Close()

	// a fresh profile, removed after the browser is gone (t.TempDir's
	// cleanup races the browser's last writes)
	profile, err := os.MkdirTemp("", "levee-console-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(profile)
	opts := append(chromedp.DefaultExecAllocatorOptions[:0:0],
		chromedp.ExecPath(bin), chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.NoFirstRun, chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profile), chromedp.WindowSize(1280, 900))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	// cdproto of this chromedp does not know every event of a newer
	// Chromium; those decode errors are not the test's
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithErrorf(func(format string, args ...any) {
		if msg := fmt.Sprintf(format, args...); !strings.Contains(msg, "could not unmarshal event") {
			t.Logf("chromedp: %s", msg)
		}
	}))
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 40*time.Second)
	defer cancelT()
	shots := os.Getenv("LEVEE_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	shot := func(name string) chromedp.Action {
		return chromedp.ActionFunc(func(ctx context.Context) error {
			var png []byte // quality 100 gives a PNG (below 100, a JPEG)
			if err := chromedp.FullScreenshot(&png, 100).Do(ctx); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(shots, "console-"+name+".png"), png, 0o644)
		})
	}
	var groupsText, payload, letterErr, editErr, archived, archive string
	err = chromedp.Run(ctx,
		network.Enable(),
		network.SetExtraHTTPHeaders(network.Headers{"Authorization": "Bearer " + token}),
		chromedp.Navigate(hs.URL+"/"),
		chromedp.WaitVisible("table.groups"),
		chromedp.Text("table.groups", &groupsText),
		shot("groups"),
		chromedp.Navigate(hs.URL+"/letter?id=hostile"),
		chromedp.WaitVisible("#payload"),
		chromedp.Text("#payload", &payload),
		chromedp.Text("#error", &letterErr),
		shot("letter-hostile"),
		chromedp.Navigate(hs.URL+"/letter?id=order-00"),
		chromedp.WaitVisible("#payload"),
		shot("letter"),
		chromedp.Navigate(hs.URL+"/group?by=fingerprint&key=5a1c0de5ca1ab1e0"),
		chromedp.WaitVisible("pre.stack"),
		shot("group-panic"),
		chromedp.Navigate(hs.URL+"/search?text=amount"),
		chromedp.WaitVisible("table.letters"),
		shot("search"),
		// edit and retry: a payload that is not JSON is refused
		chromedp.Navigate(hs.URL+"/edit?id=pay-01"),
		chromedp.WaitVisible("textarea"),
		shot("edit"),
		chromedp.SetValue("textarea", `{"amount": -5}`, chromedp.ByQuery),
		chromedp.Click(`form[action="/edit"] button`, chromedp.ByQuery),
		chromedp.WaitVisible("#edit-error"),
		chromedp.Text("#edit-error", &editErr),
		shot("edit-rejected"),
		// archive a letter from its page, find it in the archive
		chromedp.Navigate(hs.URL+"/letter?id=pay-05"),
		chromedp.WaitVisible(`form[action="/archive"] button`),
		chromedp.Click(`form[action="/archive"] button`, chromedp.ByQuery),
		// only the page after the redirect has a restore form (the old
		// page's #status could match while it unloads)
		chromedp.WaitVisible(`form[action="/restore"]`),
		chromedp.Text("#status", &archived),
		chromedp.Navigate(hs.URL+"/search?status=archived"),
		chromedp.WaitVisible("table.letters"),
		chromedp.Text("table.letters", &archive),
		shot("archive"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(groupsText, "3f9a2c1e8b7d6054") || !strings.Contains(groupsText, "77c0ffee12345678") {
		t.Errorf("groups page: %q", groupsText)
	}
	if !strings.Contains(editErr, "/amount") || down.Received() != 0 {
		t.Errorf("invalid edit: %q, %d published", editErr, down.Received())
	}
	if archived != "archived" || !strings.Contains(archive, "pay-05") {
		t.Errorf("archive: status %q, archive page %q", archived, archive)
	}
	if payload != hostile || letterErr != hostile {
		t.Errorf("hostile letter: payload %q error %q, want the markup as text", payload, letterErr)
	}
	group := hs.URL + "/group?by=fingerprint&key=3f9a2c1e8b7d6054"
	state := canary(t, ctx, group, "HALTED", shot, "group", "canary-halted")
	if !strings.Contains(state, "HALTED") {
		t.Fatalf("canary with a broken downstream: %q", state)
	}
	var shown string
	if err := chromedp.Run(ctx, chromedp.Text("#left", &shown)); err != nil || shown != fmt.Sprint(total-1) {
		t.Errorf("the halted page shows %q new letters left (%v), want %d", shown, err, total-1)
	}
	left, _ := st.List(context.Background(), dlqops.Filter{Group: "3f9a2c1e8b7d6054", Statuses: []dlqops.Status{dlqops.StatusNew}})
	if len(left) != total-1 {
		t.Errorf("after the halt %d letters are new, want %d untouched", len(left), total-1)
	}
	var lineage string
	err = chromedp.Run(ctx, chromedp.Navigate(hs.URL+"/letter?id=order-00"), chromedp.WaitVisible("table.lineage"),
		chromedp.Text("table.lineage", &lineage), shot("letter-lineage"))
	if err != nil || !strings.Contains(lineage, "failed_again") || !strings.Contains(lineage, "dead-lettered again") {
		t.Errorf("lineage of the first replayed letter: %q %v", lineage, err)
	}
	down.SetBroken(false)
	state = canary(t, ctx, group, "FINISHED", shot, "", "canary-finished")
	if !strings.Contains(state, "FINISHED") {
		t.Fatalf("canary with a fixed downstream: %q", state)
	}
	left, _ = st.List(context.Background(), dlqops.Filter{Group: "3f9a2c1e8b7d6054", Statuses: []dlqops.Status{dlqops.StatusNew}})
	if len(left) != 0 {
		t.Errorf("after the second canary %d letters are new, want 0", len(left))
	}
}

// canary starts a canary replay from the group page and polls its page
// until its state says want; it returns the last state text.
func canary(t *testing.T, ctx context.Context, group, want string, shot func(string) chromedp.Action, groupShot, endShot string) string {
	t.Helper()
	acts := []chromedp.Action{chromedp.Navigate(group), chromedp.WaitVisible("#start-canary")}
	if groupShot != "" {
		acts = append(acts, shot(groupShot))
	}
	acts = append(acts, chromedp.Click("#start-canary"), chromedp.WaitVisible("#state"))
	if err := chromedp.Run(ctx, acts...); err != nil {
		t.Fatal(err)
	}
	var state string
	for range 100 {
		if err := chromedp.Run(ctx, chromedp.Text("#state", &state)); err == nil && strings.Contains(state, want) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := chromedp.Run(ctx, shot(endShot)); err != nil {
		t.Fatal(err)
	}
	return state
}

func mustAdd(t *testing.T, s dlqops.Store, dl dlqops.Record) {
	t.Helper()
	if _, err := s.Add(context.Background(), dl); err != nil {
		t.Fatal(err)
	}
}

// chromium returns the browser's path, or skips.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium: apt-get install -y chromium")
	return ""
}
