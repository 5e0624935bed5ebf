package dlqops_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/internal/testkit"
	"go.opentelemetry.io/otel/trace"
)

const opsFP = "0123456789abcdef"

// opsSeed records n dead letters of group opsFP on topic "orders".
func opsSeed(t *testing.T, s dlqops.Store, n int) {
	t.Helper()
	m := opsMonitor(t, s)
	for i := range n {
		if err := m.Record(context.Background(), "orders.dlq",
			opsDeadLetterMsg(fmt.Sprintf("u%03d", i), "orders", opsFP, 0, opsNow.Add(time.Duration(i)*time.Second))); err != nil {
			t.Fatal(err)
		}
	}
}

func opsReplayer(t *testing.T, s dlqops.Store, p *opsPublisher, opts ...dlqops.Option) *dlqops.Replayer {
	t.Helper()
	r, err := dlqops.NewReplayer(s, p, append([]dlqops.Option{dlqops.WithReplayRate(0)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestReplayLineage(t *testing.T) {
	s := dlqops.NewMemStore()
	opsSeed(t, s, 1)
	p := &opsPublisher{}
	r := opsReplayer(t, s, p, dlqops.WithReplayUUID(func() string { return "replay-1" }),
		dlqops.WithClock(func() time.Time { return opsNow.Add(time.Hour) }))
	rep, err := r.Replay(context.Background(), dlqops.ReplaySelection{Filter: dlqops.Filter{Group: opsFP}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Replayed != 1 || rep.Processed != 1 || rep.Items[0].ReplayUUID != "replay-1" {
		t.Fatalf("report: %+v", rep)
	}
	msgs, topics, _ := p.sent()
	if len(msgs) != 1 || topics[0] != "orders" {
		t.Fatalf("sent %d to %v", len(msgs), topics)
	}
	md := msgs[0].Metadata
	want := map[string]string{
		dlq.KeyReplayCount:           "1",
		dlq.KeyOriginalUUID:          "u000",
		dlq.KeyReplayOf:              opsID("u000"),
		dlq.KeyReplayedAt:            dlq.FormatTime(opsNow.Add(time.Hour)),
		levee.KeyOriginalTraceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	}
	for k, v := range want {
		if md[k] != v {
			t.Errorf("%s: got %q want %q", k, md[k], v)
		}
	}
	for _, k := range append(dlq.FailureKeys(), "traceparent") {
		if _, ok := md[k]; ok {
			t.Errorf("replayed message still carries %s", k)
		}
	}
	if msgs[0].UUID != "replay-1" || string(msgs[0].Payload) != `{"order":"u000"}` {
		t.Errorf("message: uuid %q payload %q", msgs[0].UUID, msgs[0].Payload)
	}
	dl, _ := s.Get(context.Background(), opsID("u000"))
	if dl.Status != dlqops.StatusReplayed || dl.ReplayUUID != "replay-1" {
		t.Errorf("stored letter: %+v", dl)
	}
}

func TestReplayNeverSendsTwice(t *testing.T) {
	s := dlqops.NewMemStore()
	opsSeed(t, s, 5)
	p := &opsPublisher{}
	r := opsReplayer(t, s, p)
	ctx := context.Background()
	for run := range 2 {
		if _, err := r.Replay(ctx, dlqops.ReplaySelection{}); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
	}
	if msgs, _, _ := p.sent(); len(msgs) != 5 {
		t.Fatalf("two runs sent %d want 5", len(msgs))
	}
	rep, err := r.Replay(ctx, dlqops.ReplaySelection{Force: true, Filter: dlqops.Filter{IDs: []string{opsID("u001")}}})
	if err != nil || rep.Replayed != 1 {
		t.Fatalf("forced: %+v %v", rep, err)
	}
	if msgs, _, _ := p.sent(); len(msgs) != 6 {
		t.Errorf("forced replay: sent %d want 6", len(msgs))
	}
}

func TestConcurrentReplayersMemStore(t *testing.T) {
	s := dlqops.NewMemStore()
	opsSeed(t, s, 200)
	p := &opsPublisher{}
	var wg sync.WaitGroup
	var total atomic.Int64
	for w := range 4 {
		r := opsReplayer(t, s, p, dlqops.WithReplayOwner(fmt.Sprintf("w%d", w)), dlqops.WithReplayBatch(3))
		wg.Go(func() {
			rep, err := r.Replay(context.Background(), dlqops.ReplaySelection{})
			if err != nil {
				t.Error(err)
			}
			total.Add(int64(rep.Replayed))
		})
	}
	wg.Wait()
	msgs, _, _ := p.sent()
	seen := map[string]int{}
	for _, m := range msgs {
		seen[m.Metadata[dlq.KeyReplayOf]]++
	}
	if len(msgs) != 200 || len(seen) != 200 || total.Load() != 200 {
		t.Errorf("sent %d messages for %d letters, reported %d; want 200 each", len(msgs), len(seen), total.Load())
	}
}

func TestReplayHeld(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(m *message.Message)
		opts    []dlqops.Option
		wantErr error
	}{
		{name: "max replays", mutate: func(m *message.Message) { m.Metadata[dlq.KeyReplayCount] = "3" }, wantErr: dlqops.ErrMaxReplays},
		{name: "max replays 1", mutate: func(m *message.Message) { m.Metadata[dlq.KeyReplayCount] = "1" },
			opts: []dlqops.Option{dlqops.WithMaxReplays(1)}, wantErr: dlqops.ErrMaxReplays},
		{name: "missing original topic", mutate: func(m *message.Message) { delete(m.Metadata, dlq.KeyOriginalTopic) }, wantErr: dlqops.ErrNoOriginalTopic},
		{name: "blank original topic", mutate: func(m *message.Message) { m.Metadata[dlq.KeyOriginalTopic] = "   " }, wantErr: dlqops.ErrNoOriginalTopic},
		{name: "re-validation fails", opts: []dlqops.Option{dlqops.WithReplayValidator(func(topic string, payload []byte) error {
			return fmt.Errorf("schema of %s: /order: wrong type", topic)
		})}, wantErr: dlqops.ErrRevalidation},
	}
	for _, tt := range tests {
		for _, dry := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/dry=%v", tt.name, dry), func(t *testing.T) {
				s := dlqops.NewMemStore()
				m := opsDeadLetterMsg("u1", "orders", opsFP, 0, opsNow)
				if tt.mutate != nil {
					tt.mutate(m)
				}
				if err := opsMonitor(t, s).Handle(m); err != nil {
					t.Fatal(err)
				}
				p := &opsPublisher{}
				rep, err := opsReplayer(t, s, p, tt.opts...).Replay(context.Background(), dlqops.ReplaySelection{DryRun: dry})
				if err != nil {
					t.Fatal(err)
				}
				if rep.Held != 1 || rep.Replayed != 0 || len(rep.Items) != 1 || !errors.Is(rep.Items[0].Err, tt.wantErr) {
					t.Fatalf("report %+v: want one held with %v", rep, tt.wantErr)
				}
				if msgs, _, _ := p.sent(); len(msgs) != 0 {
					t.Errorf("published %d", len(msgs))
				}
				dl, _ := s.Get(context.Background(), dlqops.NewRecord(m, "orders.dlq", opsNow).ID)
				if dl.Status != dlqops.StatusNew {
					t.Errorf("status %s want new", dl.Status)
				}
				if wantReason := !dry; (dl.Reason != "") != wantReason {
					t.Errorf("reason %q (dry run %v)", dl.Reason, dry)
				}
			})
		}
	}
}

func TestReplayDryRun(t *testing.T) {
	s := dlqops.NewMemStore()
	opsSeed(t, s, 3)
	p := &opsPublisher{}
	rep, err := opsReplayer(t, s, p).Replay(context.Background(), dlqops.ReplaySelection{DryRun: true,
		Filter: dlqops.Filter{Since: opsNow.Add(time.Second)}})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.DryRun || rep.Replayed != 2 || rep.Items[0].Outcome != dlqops.OutcomeWouldReplay {
		t.Errorf("report %+v", rep)
	}
	if msgs, _, _ := p.sent(); len(msgs) != 0 {
		t.Errorf("dry run published %d", len(msgs))
	}
	if letters, _ := s.List(context.Background(), dlqops.Filter{Statuses: []dlqops.Status{dlqops.StatusNew}}); len(letters) != 3 {
		t.Errorf("dry run changed statuses: %d new", len(letters))
	}
}

func TestReplayPublishFailureStopsAndKeepsDead(t *testing.T) {
	s := dlqops.NewMemStore()
	opsSeed(t, s, 4)
	p := &opsPublisher{}
	p.setFail(errors.New("broker unreachable"))
	rep, err := opsReplayer(t, s, p, dlqops.WithReplayOwner("A")).Replay(context.Background(), dlqops.ReplaySelection{})
	if !errors.Is(err, dlqops.ErrReplayPublish) {
		t.Fatalf("got %v want ErrReplayPublish", err)
	}
	if rep.Failed != 1 || rep.Processed != 1 {
		t.Errorf("report %+v", rep)
	}
	dl, _ := s.Get(context.Background(), opsID("u000"))
	if dl.Status != dlqops.StatusNew || dl.Reason == "" {
		t.Errorf("failed letter: status %s reason %q", dl.Status, dl.Reason)
	}
	// the rest of the batch was released: another replayer gets all four now
	p.setFail(nil)
	rep, err = opsReplayer(t, s, p, dlqops.WithReplayOwner("B")).Replay(context.Background(), dlqops.ReplaySelection{})
	if err != nil || rep.Replayed != 4 {
		t.Errorf("second run: %+v %v", rep, err)
	}
}

func TestReplayResumesAfterCrash(t *testing.T) {
	s := dlqops.NewMemStore()
	opsSeed(t, s, 4)
	ctx := context.Background()
	// a replayer claimed two letters and crashed
	if _, err := s.Claim(ctx, dlqops.ClaimRequest{Owner: "crashed", Now: opsNow, Lease: time.Minute, Limit: 2}); err != nil {
		t.Fatal(err)
	}
	now := opsNow
	p := &opsPublisher{}
	r := opsReplayer(t, s, p, dlqops.WithClock(func() time.Time { return now }), dlqops.WithReplayLease(time.Minute))
	rep, err := r.Replay(ctx, dlqops.ReplaySelection{})
	if err != nil || rep.Replayed != 2 {
		t.Fatalf("during the crashed lease: %+v %v", rep, err)
	}
	now = opsNow.Add(2 * time.Minute)
	rep, err = r.Replay(ctx, dlqops.ReplaySelection{})
	if err != nil || rep.Replayed != 2 {
		t.Fatalf("after the lease: %+v %v", rep, err)
	}
	msgs, _, _ := p.sent()
	var got []string
	for _, m := range msgs {
		got = append(got, m.Metadata[dlq.KeyReplayOf])
	}
	slices.Sort(got)
	want := []string{opsID("u000"), opsID("u001"), opsID("u002"), opsID("u003")}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("replayed %v", got)
	}
}

// TestReplayVelocity checks the rate limit in fake time: 10 letters at 5/s
// go out 200 ms apart, the first at once.
func TestReplayVelocity(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		s := dlqops.NewMemStore()
		opsSeed(t, s, 10)
		p := &opsPublisher{}
		var progress []dlqops.ReplayProgress
		r, err := dlqops.NewReplayer(s, p, dlqops.WithReplayRate(5), dlqops.WithReplayBatch(4),
			dlqops.WithReplayProgress(func(pr dlqops.ReplayProgress) { progress = append(progress, pr) }))
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		rep, err := r.Replay(context.Background(), dlqops.ReplaySelection{})
		if err != nil || rep.Replayed != 10 {
			t.Fatalf("%+v %v", rep, err)
		}
		_, _, at := p.sent()
		for i, ts := range at {
			if want := time.Duration(i) * 200 * time.Millisecond; ts.Sub(start) != want {
				t.Errorf("publish %d at %s want %s", i, ts.Sub(start), want)
			}
		}
		if len(progress) != 10 || progress[9].Replayed != 10 || progress[9].Elapsed != 1800*time.Millisecond {
			t.Errorf("progress: %d reports, last %+v", len(progress), progress[len(progress)-1])
		}
	})
}

// TestReplayCancelReleasesClaims cancels a run waiting for a token: it
// returns the context error and another replayer can take the rest at once.
func TestReplayCancelReleasesClaims(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		s := dlqops.NewMemStore()
		opsSeed(t, s, 5)
		p := &opsPublisher{}
		r, err := dlqops.NewReplayer(s, p, dlqops.WithReplayRate(1), dlqops.WithReplayOwner("A"))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		defer cancel()
		rep, err := r.Replay(ctx, dlqops.ReplaySelection{})
		// the limiter refuses a wait that would outlast the deadline
		if err == nil || rep.Replayed != 2 {
			t.Fatalf("got %+v, %v want 2 replayed and an error", rep, err)
		}
		rep, err = opsReplayer(t, s, p, dlqops.WithReplayOwner("B")).Replay(context.Background(), dlqops.ReplaySelection{})
		if err != nil || rep.Replayed != 3 {
			t.Errorf("B: %+v %v want 3", rep, err)
		}
	})
}

func TestNewReplayerInvalid(t *testing.T) {
	s := dlqops.NewMemStore()
	tests := []struct {
		name string
		s    dlqops.Store
		opts []dlqops.Option
	}{
		{"nil store", nil, nil},
		{"negative rate", s, []dlqops.Option{dlqops.WithReplayRate(-1)}},
		{"max replays 0", s, []dlqops.Option{dlqops.WithMaxReplays(0)}},
		{"zero lease", s, []dlqops.Option{dlqops.WithReplayLease(0)}},
		{"zero batch", s, []dlqops.Option{dlqops.WithReplayBatch(0)}},
		{"blank replay topic", s, []dlqops.Option{dlqops.WithReplayTopics("orders", " ")}},
		{"empty replay topic", s, []dlqops.Option{dlqops.WithReplayTopics("")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := dlqops.NewReplayer(tt.s, &opsPublisher{}, tt.opts...); !errors.Is(err, dlqops.ErrInvalidConfig) {
				t.Errorf("got %v want ErrInvalidConfig", err)
			}
		})
	}
}

// TestReplayLoopStopsAtMaxReplays runs the whole loop on a real router: a
// message that keeps failing is dead-lettered, recorded, replayed, fails
// again... and stops after max replays, held with its reason. Then the
// cause is fixed and a forced replay of the held letter is still refused,
// while a fresh group replays and succeeds.
func TestReplayLoopStopsAtMaxReplays(t *testing.T) {
	h := testkit.New(t)
	dr, err := dlq.New(h.PubSub, dlq.WithTopic("orders.dlq"), dlq.WithMaxAttempts(1))
	if err != nil {
		t.Fatal(err)
	}
	s := dlqops.NewMemStore()
	mon, err := dlqops.NewMonitor(s)
	if err != nil {
		t.Fatal(err)
	}
	var calls, stored atomic.Int64
	var fixed atomic.Bool
	var okCounts sync.Map // uuid -> replay count seen by the handler on success
	h.Handle("orders-handler", "orders", func(msg *message.Message) error {
		calls.Add(1)
		if !fixed.Load() {
			return dlq.Permanent(errors.New("inventory service rejected order"))
		}
		okCounts.Store(msg.Metadata[dlq.KeyOriginalUUID], msg.Metadata[dlq.KeyReplayCount])
		return nil
	}, dr.Middleware)
	h.Handle("dlq-monitor", "orders.dlq", func(msg *message.Message) error {
		err := mon.Handle(msg)
		if err == nil {
			stored.Add(1)
		}
		return err
	})
	h.Start()
	orig := message.NewMessage("orig-1", []byte(`{"order":1}`))
	h.Publish("orders", orig)
	wait := func(n int64) {
		t.Helper()
		h.WaitFor(func(testkit.Counts) bool { return stored.Load() >= n }, 10*time.Second)
	}
	wait(1)
	r, err := dlqops.NewReplayer(s, h.PubSub, dlqops.WithReplayRate(0), dlqops.WithMaxReplays(3))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := 1; i <= 3; i++ {
		rep, err := r.Replay(ctx, dlqops.ReplaySelection{})
		if err != nil || rep.Replayed != 1 {
			t.Fatalf("replay %d: %+v %v", i, rep, err)
		}
		wait(int64(i + 1))
	}
	rep, err := r.Replay(ctx, dlqops.ReplaySelection{})
	if err != nil || rep.Held != 1 || rep.Replayed != 0 || !errors.Is(rep.Items[0].Err, dlqops.ErrMaxReplays) {
		t.Fatalf("4th replay: %+v %v want held by max replays", rep, err)
	}
	if got := calls.Load(); got != 4 {
		t.Errorf("handler calls %d want 4 (original + 3 replays)", got)
	}
	letters, _ := s.List(ctx, dlqops.Filter{})
	if len(letters) != 4 {
		t.Fatalf("stored %d letters want 4", len(letters))
	}
	var counts []int
	for _, dl := range letters {
		counts = append(counts, dl.ReplayCount)
		if dl.OriginalUUID != "orig-1" {
			t.Errorf("lineage lost: original uuid %q", dl.OriginalUUID)
		}
	}
	slices.Sort(counts)
	if !slices.Equal(counts, []int{0, 1, 2, 3}) {
		t.Errorf("replay counts %v want [0 1 2 3]", counts)
	}
	held, _ := s.List(ctx, dlqops.Filter{Statuses: []dlqops.Status{dlqops.StatusNew}})
	if len(held) != 1 || held[0].ReplayCount != 3 || held[0].Reason == "" {
		t.Fatalf("held letter: %+v", held)
	}

	// fix the cause; a new failure group replays and succeeds
	fixed.Store(false)
	h.Publish("orders", message.NewMessage("orig-2", []byte(`{"order":2}`)))
	wait(5)
	fixed.Store(true)
	var id2 string
	all, _ := s.List(ctx, dlqops.Filter{})
	for _, dl := range all {
		if dl.UUID == "orig-2" {
			id2 = dl.ID
		}
	}
	rep, err = r.Replay(ctx, dlqops.ReplaySelection{Filter: dlqops.Filter{IDs: []string{id2}}})
	if err != nil || rep.Replayed != 1 {
		t.Fatalf("replay of fixed: %+v %v", rep, err)
	}
	h.WaitFor(func(testkit.Counts) bool { _, ok := okCounts.Load("orig-2"); return ok }, 10*time.Second)
	if v, _ := okCounts.Load("orig-2"); v != "1" {
		t.Errorf("succeeded replay carried replay count %v want 1", v)
	}
}

// TestReplaySpanHook checks the contract tracing.Tracer.StartReplay relies
// on: the hook sees the dead letter's traceparent, moves it, and what it
// injects is published.
func TestReplaySpanHook(t *testing.T) {
	s := dlqops.NewMemStore()
	opsSeed(t, s, 1)
	p := &opsPublisher{}
	var seen string
	hook := func(ctx context.Context, topic string, msg *message.Message) (context.Context, trace.Span) {
		seen = msg.Metadata["traceparent"]
		msg.Metadata[levee.KeyOriginalTraceparent] = seen
		msg.Metadata["traceparent"] = "00-11111111111111111111111111111111-2222222222222222-01"
		return ctx, trace.SpanFromContext(ctx)
	}
	if _, err := opsReplayer(t, s, p, dlqops.WithReplaySpan(hook)).Replay(context.Background(), dlqops.ReplaySelection{}); err != nil {
		t.Fatal(err)
	}
	msgs, _, _ := p.sent()
	const orig = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	if seen != orig {
		t.Errorf("hook saw traceparent %q want %q", seen, orig)
	}
	if got := msgs[0].Metadata[levee.KeyOriginalTraceparent]; got != orig {
		t.Errorf("published %s %q want %q", levee.KeyOriginalTraceparent, got, orig)
	}
	if got := msgs[0].Metadata["traceparent"]; got != "00-11111111111111111111111111111111-2222222222222222-01" {
		t.Errorf("published traceparent %q, want the hook's", got)
	}
}

// failAgainPublisher dead-letters every replayed message into the store at
// once, as a fast consumer whose cause is not fixed does, while the replay
// run is still going.
type failAgainPublisher struct {
	t   *testing.T
	mon *dlqops.Monitor
	n   int
}

func (p *failAgainPublisher) Publish(topic string, msgs ...*message.Message) error {
	for _, m := range msgs {
		p.n++
		if err := p.mon.Record(context.Background(), "orders.dlq",
			opsDeadLetterMsg(m.UUID, topic, opsFP, dlq.ReplayCount(m.Metadata), opsNow.Add(time.Hour+time.Duration(p.n)*time.Second))); err != nil {
			p.t.Error(err)
		}
	}
	return nil
}

func (p *failAgainPublisher) Close() error { return nil }

// TestReplayRunSkipsItsOwnFailures: letters dead-lettered by the failure of
// a message the same run replayed are left new for a later run, so one run
// replays each letter once instead of looping until max replays.
func TestReplayRunSkipsItsOwnFailures(t *testing.T) {
	s := dlqops.NewMemStore()
	opsSeed(t, s, 2)
	p := &failAgainPublisher{t: t, mon: opsMonitor(t, s)}
	r, err := dlqops.NewReplayer(s, p, dlqops.WithReplayRate(0), dlqops.WithReplayBatch(1), dlqops.WithMaxReplays(5))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.Replay(context.Background(), dlqops.ReplaySelection{})
	if err != nil || rep.Replayed != 2 || rep.Processed != 2 {
		t.Fatalf("first run: %+v %v, want the 2 seeded letters replayed once each", rep, err)
	}
	fresh, err := s.List(context.Background(), dlqops.Filter{Statuses: []dlqops.Status{dlqops.StatusNew}})
	if err != nil || len(fresh) != 2 {
		t.Fatalf("new letters after the run: %d %v, want the 2 failures of the replays", len(fresh), err)
	}
	rep, err = r.Replay(context.Background(), dlqops.ReplaySelection{})
	if err != nil || rep.Replayed != 2 {
		t.Fatalf("second run: %+v %v, want the 2 failures replayed", rep, err)
	}
}

// TestReplayTopics: a letter's KeyOriginalTopic is chosen by whoever
// published the letter; a replay publishes only to a topic the replayer
// allows, by default the topic the letter's DLQ topic is named after.
func TestReplayTopics(t *testing.T) {
	tests := []struct {
		name          string
		dlqTopic      string
		originalTopic string
		opts          []dlqops.Option
		wantPublished bool
	}{
		{name: "default: back to the DLQ topic's own topic", dlqTopic: "orders.dlq", originalTopic: "orders", wantPublished: true},
		{name: "default: forged letter names another topic", dlqTopic: "orders.dlq", originalTopic: "admin.commands"},
		{name: "default: shared DLQ topic", dlqTopic: "all.dlq", originalTopic: "orders"},
		{name: "default: no DLQ topic known", dlqTopic: "", originalTopic: "orders"},
		{name: "listed topic from a shared DLQ topic", dlqTopic: "all.dlq", originalTopic: "orders",
			opts: []dlqops.Option{dlqops.WithReplayTopics("orders", "payments")}, wantPublished: true},
		{name: "unlisted topic", dlqTopic: "admin.commands.dlq", originalTopic: "admin.commands",
			opts: []dlqops.Option{dlqops.WithReplayTopics("orders", "payments")}},
		{name: "the last call wins", dlqTopic: "orders.dlq", originalTopic: "orders",
			opts: []dlqops.Option{dlqops.WithReplayTopics("orders"), dlqops.WithReplayTopics("payments")}},
		{name: "no topics is the default", dlqTopic: "orders.dlq", originalTopic: "orders",
			opts: []dlqops.Option{dlqops.WithReplayTopics()}, wantPublished: true},
	}
	for _, tt := range tests {
		for _, dry := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/dry=%v", tt.name, dry), func(t *testing.T) {
				s := dlqops.NewMemStore()
				m := opsDeadLetterMsg("u1", tt.originalTopic, opsFP, 0, opsNow)
				if err := opsMonitor(t, s).Record(context.Background(), tt.dlqTopic, m); err != nil {
					t.Fatal(err)
				}
				p := &opsPublisher{}
				rep, err := opsReplayer(t, s, p, tt.opts...).Replay(context.Background(), dlqops.ReplaySelection{DryRun: dry})
				if err != nil {
					t.Fatal(err)
				}
				msgs, topics, _ := p.sent()
				if tt.wantPublished {
					if rep.Replayed != 1 || (!dry && (len(msgs) != 1 || topics[0] != tt.originalTopic)) {
						t.Fatalf("report %+v, published to %v: want one replay to %q", rep, topics, tt.originalTopic)
					}
					return
				}
				if rep.Held != 1 || len(rep.Items) != 1 || !errors.Is(rep.Items[0].Err, dlqops.ErrTopicNotAllowed) || len(msgs) != 0 {
					t.Fatalf("report %+v, published %d: want one held with ErrTopicNotAllowed and nothing published", rep, len(msgs))
				}
				dl, err := s.Get(context.Background(), dlqops.NewRecord(m, tt.dlqTopic, opsNow).ID)
				if err != nil {
					t.Fatal(err)
				}
				if dl.Status != dlqops.StatusNew || (!dry && !strings.Contains(dl.Reason, "replay topic not allowed")) {
					t.Errorf("held letter: status %s reason %q", dl.Status, dl.Reason)
				}
			})
		}
	}
}
