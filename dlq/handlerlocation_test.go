package dlq_test

import (
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/middleware"
)

// passThrough stands for a Levee layer between the dlq and the handler
// (breaker, priority, ratelimit, timeout): a closure of Levee's, so the
// dlq cannot see the handler through it. On success it allocates nothing.
var passThrough = middleware.Recover

// orderSvc's method value is a handler too: its "-fm" wrapper has no
// source of its own.
type orderSvc struct{}

func (*orderSvc) Handle(*message.Message) ([]*message.Message, error) {
	return nil, dlq.Permanent(errBadOrder)
}

var errBadOrder = dlqTestError("bad order")

type dlqTestError string

func (e dlqTestError) Error() string { return string(e) }

// consumes is a NoPublishHandlerFunc, as AddConsumerHandler takes, which
// an adapter wraps (as Watermill's does).
func consumes(*message.Message) error { return dlq.Permanent(errBadOrder) }

// letterVia builds a Stack around h with build and returns the letter of
// one failing message.
func letterVia(t *testing.T, h message.HandlerFunc, build func(*middleware.Stack, *dlq.Retrier)) *message.Message {
	t.Helper()
	pub := newRecPublisher()
	r, err := dlq.New(pub, dlq.WithTopic(testDLQ))
	if err != nil {
		t.Fatal(err)
	}
	s := middleware.NewStack().Recover(middleware.Recover).Breaker(passThrough).Timeout(passThrough)
	build(s, r)
	if _, err := s.Middleware(h)(message.NewMessage("loc-1", []byte(`{}`))); err != nil {
		t.Fatalf("handler chain: %v", err)
	}
	dead := pub.published(testDLQ)
	if len(dead) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dead))
	}
	return dead[0]
}

// TestStackNamesTheHandler: inside a Stack with layers between the dlq and
// the handler, a letter names the service's handler when the dlq is set
// as a Layer (as config sets it); set as a plain func it cannot know it.
func TestStackNamesTheHandler(t *testing.T) {
	const here = "handlerlocation_test.go:"
	adapted := func(msg *message.Message) ([]*message.Message, error) { return nil, consumes(msg) }
	tests := []struct {
		name  string
		h     message.HandlerFunc
		build func(*middleware.Stack, *dlq.Retrier)
		want  string // prefix of the location; "" for none
		file  bool   // the location has file:line in this file
	}{
		{"layer", failsPermanently, func(s *middleware.Stack, r *dlq.Retrier) {
			s.SetLayer(middleware.SlotDLQ, r, r.Label())
		}, "github.com/levee-dev/levee/dlq_test.failsPermanently (", false},
		{"plain func: no location", failsPermanently, func(s *middleware.Stack, r *dlq.Retrier) {
			s.DLQ(r.Middleware)
		}, "", false},
		{"located through an adapter", middleware.Recover(adapted), func(s *middleware.Stack, r *dlq.Retrier) {
			s.SetLayer(middleware.SlotDLQ, r, "").Locate(message.NoPublishHandlerFunc(consumes))
		}, "github.com/levee-dev/levee/dlq_test.consumes (", true},
		{"an adapter of Levee's, not located", middleware.Recover(failsPermanently), func(s *middleware.Stack, r *dlq.Retrier) {
			s.SetLayer(middleware.SlotDLQ, r, "")
		}, "", false},
		{"method value: its name, no file", (&orderSvc{}).Handle, func(s *middleware.Stack, r *dlq.Retrier) {
			s.SetLayer(middleware.SlotDLQ, r, "")
		}, "github.com/levee-dev/levee/dlq_test.(*orderSvc).Handle", false},
		{"Locate(nil): the wrapped func", failsPermanently, func(s *middleware.Stack, r *dlq.Retrier) {
			s.SetLayer(middleware.SlotDLQ, r, "").Locate(nil)
		}, "github.com/levee-dev/levee/dlq_test.failsPermanently (", false},
		{"Locate(not a func): none", failsPermanently, func(s *middleware.Stack, r *dlq.Retrier) {
			s.SetLayer(middleware.SlotDLQ, r, "").Locate(42)
		}, "", false},
		{"Set after SetLayer forgets the layer", failsPermanently, func(s *middleware.Stack, r *dlq.Retrier) {
			s.SetLayer(middleware.SlotDLQ, r, "").DLQ(r.Middleware)
		}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			md := letterVia(t, tt.h, tt.build).Metadata
			loc, ok := md[dlq.KeyCodeLocation]
			switch {
			case tt.want == "" && ok:
				t.Errorf("%s = %q, want none", dlq.KeyCodeLocation, loc)
			case tt.want != "" && !strings.HasPrefix(loc, tt.want):
				t.Errorf("%s = %q, want %q…", dlq.KeyCodeLocation, loc, tt.want)
			case tt.file && !strings.Contains(loc, here):
				t.Errorf("%s = %q, want a line of %s", dlq.KeyCodeLocation, loc, here)
			}
			if tt.want == "github.com/levee-dev/levee/dlq_test.(*orderSvc).Handle" && loc != tt.want {
				t.Errorf("%s = %q, want the method's name alone", dlq.KeyCodeLocation, loc)
			}
		})
	}
}

// TestLocationKeepsGrouping: the handler's location does not enter the
// fingerprint of an error that is not a panic (docs/DLQ.md): the same
// error groups alike with and without it.
func TestLocationKeepsGrouping(t *testing.T) {
	located := letterVia(t, failsPermanently, func(s *middleware.Stack, r *dlq.Retrier) {
		s.SetLayer(middleware.SlotDLQ, r, "")
	}).Metadata
	plain := letterVia(t, failsPermanently, func(s *middleware.Stack, r *dlq.Retrier) { s.DLQ(r.Middleware) }).Metadata
	if located[dlq.KeyCodeLocation] == "" {
		t.Fatalf("no location on the located letter")
	}
	if located[dlq.KeyFingerprint] != plain[dlq.KeyFingerprint] {
		t.Errorf("fingerprint %s with the location, %s without: want one group", located[dlq.KeyFingerprint], plain[dlq.KeyFingerprint])
	}
}

// TestLocatedSuccessPathAllocs: naming the handler costs nothing per
// message: a Stack whose dlq is a HandlerAware Layer allocates on success
// exactly what one whose dlq is a plain func does, and nothing at all.
func TestLocatedSuccessPathAllocs(t *testing.T) {
	ok := func(*message.Message) ([]*message.Message, error) { return nil, nil }
	allocs := func(build func(*middleware.Stack, *dlq.Retrier)) float64 {
		r, err := dlq.New(newRecPublisher(), dlq.WithTopic(testDLQ))
		if err != nil {
			t.Fatal(err)
		}
		s := middleware.NewStack().Breaker(passThrough)
		build(s, r)
		h := s.Middleware(ok)
		msg := message.NewMessage("a-1", nil)
		return testing.AllocsPerRun(1000, func() {
			if _, err := h(msg); err != nil {
				t.Fatal(err)
			}
		})
	}
	plain := allocs(func(s *middleware.Stack, r *dlq.Retrier) { s.DLQ(r.Middleware) })
	located := allocs(func(s *middleware.Stack, r *dlq.Retrier) {
		s.SetLayer(middleware.SlotDLQ, r, "").Locate(ok)
	})
	if located != plain || located != 0 {
		t.Errorf("allocations per success: %v located, %v plain; want 0 and 0", located, plain)
	}
}
