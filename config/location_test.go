package config_test

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/internal/testkit"
	"github.com/levee-dev/levee/middleware"
)

// The handlers below stand for a service's code (this external test
// package plays one).

var errCardDeclined = errors.New("card declined")

func chargeCard(*message.Message) error { return dlq.Permanent(errCardDeclined) }

func refundCard(*message.Message) ([]*message.Message, error) {
	return nil, dlq.Permanent(errCardDeclined)
}

const locationYAML = `
handlers:
  payments:
    recover: true
    dlq: {topic: loc.dlq, retry: {max_attempts: 1}}
    ratelimit: {rate: 1000/s, burst: 10}
    timeout: 2s
  refunds:
    dlq: {topic: loc.dlq, retry: {max_attempts: 1}}
    timeout: 2s
  unlocated:
    dlq: {topic: loc.dlq, retry: {max_attempts: 1}}
    timeout: 2s
`

// TestYAMLLetterNamesTheHandler: on a real router, a dead letter of a
// YAML-built handler names the service's handler function, with Levee
// layers (rate limit, timeout) between the dlq and it: a handler added
// with AddHandler as the stack sees it, one added with AddConsumerHandler
// (which Watermill wraps) once Applied.Locate names it. Without that, a
// consumer handler's letter has no location (Watermill's closure is not
// the service's code).
func TestYAMLLetterNamesTheHandler(t *testing.T) {
	h := testkit.New(t)
	h.Handle("payments", "loc.payments", chargeCard)
	h.Handle("unlocated", "loc.unlocated", chargeCard)
	h.Router.AddHandler("refunds", "loc.refunds", h.PubSub, "", h.PubSub, refundCard)
	h.WatchDeadLetters("loc.dlq")
	cfg, err := config.Parse("levee.yaml", []byte(locationYAML), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	applied, err := config.Apply(h.Router, cfg, config.Deps{Publisher: h.PubSub})
	if err != nil {
		t.Fatal(err)
	}
	defer applied.Close()
	if !applied.Locate("payments", message.NoPublishHandlerFunc(chargeCard)) {
		t.Fatal("Locate: payments is configured")
	}
	if applied.Locate("nope", chargeCard) {
		t.Error("Locate: an unconfigured handler reported as located")
	}
	h.Start()
	for _, topic := range []string{"loc.payments", "loc.refunds", "loc.unlocated"} {
		h.PublishN(topic, 1, nil)
	}
	h.WaitFor(func(c testkit.Counts) bool { return c.DeadLettered == 3 }, 5*time.Second)
	want := map[string]string{
		"payments":  "github.com/levee-dev/levee/config_test.chargeCard (",
		"refunds":   "github.com/levee-dev/levee/config_test.refundCard (",
		"unlocated": "",
	}
	for _, dl := range h.DeadLetters() {
		name := dl.Metadata[dlq.KeyHandler]
		loc, ok := dl.Metadata[dlq.KeyCodeLocation]
		w := want[name]
		switch {
		case w == "" && ok:
			t.Errorf("%s: %s = %q, want none", name, dlq.KeyCodeLocation, loc)
		case w != "" && (!strings.HasPrefix(loc, w) || !strings.Contains(loc, "location_test.go:")):
			t.Errorf("%s: %s = %q, want %s… in location_test.go", name, dlq.KeyCodeLocation, loc, w)
		}
		delete(want, name)
	}
	if len(want) > 0 {
		t.Errorf("no letter of %v", want)
	}
}

// TestYAMLLocatedSuccessPathAllocs: a YAML-built stack, whose dlq learns
// the handler, allocates on success what the same stack with the dlq set
// as a plain func (no location) does.
func TestYAMLLocatedSuccessPathAllocs(t *testing.T) {
	cfg, err := config.Parse("levee.yaml", []byte("handlers:\n  p:\n    recover: true\n    dlq: {topic: loc.dlq}\n"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := config.Build(cfg, config.Deps{Publisher: nopPub{}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	r, ok := a.Retrier("p")
	if !ok {
		t.Fatal("no retrier")
	}
	ok200 := func(*message.Message) ([]*message.Message, error) { return nil, nil }
	allocs := func(h message.HandlerFunc) float64 {
		msg := message.NewMessage("a-1", nil)
		return testing.AllocsPerRun(1000, func() {
			if _, err := h(msg); err != nil {
				t.Fatal(err)
			}
		})
	}
	a.Locate("p", ok200)
	located := allocs(a.Stack("p").Middleware(ok200))
	plain := allocs(middleware.NewStack().Recover(middleware.Recover).DLQ(r.Middleware).Middleware(ok200))
	if located != plain {
		t.Errorf("allocations per success: %v located, %v plain; want equal", located, plain)
	}
}

type nopPub struct{}

func (nopPub) Publish(string, ...*message.Message) error { return nil }
func (nopPub) Close() error                              { return nil }

// TestLocatedWithAlsoInTheDLQSlot: a section that adds a middleware to the
// dlq slot (BuildEnv.Also) keeps it outside the dlq, and the dlq still
// names the handler.
func TestLocatedWithAlsoInTheDLQSlot(t *testing.T) {
	var order []string
	audit := config.NewSection("audit", middleware.SlotTracing, func(bool) string { return "" },
		func(_ bool, b config.BuildEnv) (message.HandlerMiddleware, io.Closer, error) {
			b.Also(middleware.SlotDLQ, func(next message.HandlerFunc) message.HandlerFunc {
				return func(msg *message.Message) ([]*message.Message, error) {
					order = append(order, "audit")
					return next(msg)
				}
			}, "audit")
			return nil, nil, nil
		})
	sections := append(config.DefaultSections(), audit)
	cfg, err := config.Parse("levee.yaml", []byte("handlers:\n  p:\n    audit: true\n    dlq: {topic: loc.dlq, retry: {max_attempts: 1}}\n    timeout: 2s\n"), nil, sections)
	if err != nil {
		t.Fatal(err)
	}
	pub := &capturePub{}
	a, err := config.Build(cfg, config.Deps{Publisher: pub})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if d := a.Stack("p").Describe(); !strings.Contains(d, "dlq audit + topic=loc.dlq") {
		t.Errorf("Describe:\n%s\nwant the dlq slot labelled audit + the dlq's label", d)
	}
	h := a.Stack("p").Middleware(func(*message.Message) ([]*message.Message, error) {
		order = append(order, "handler")
		return refundCard(nil)
	})
	if _, err := h(message.NewMessage("also-1", nil)); err != nil {
		t.Fatal(err)
	}
	if strings.Join(order, ",") != "audit,handler" {
		t.Errorf("order %v, want audit outside the handler", order)
	}
	if len(pub.msgs) != 1 {
		t.Fatalf("%d letters, want 1", len(pub.msgs))
	}
	if loc := pub.msgs[0].Metadata[dlq.KeyCodeLocation]; !strings.HasPrefix(loc, "github.com/levee-dev/levee/config_test.TestLocatedWithAlsoInTheDLQSlot.func") {
		t.Errorf("%s = %q, want the handler (a closure of this test)", dlq.KeyCodeLocation, loc)
	}
}

type capturePub struct{ msgs []*message.Message }

func (p *capturePub) Publish(_ string, msgs ...*message.Message) error {
	p.msgs = append(p.msgs, msgs...)
	return nil
}
func (*capturePub) Close() error { return nil }
