package dlqtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
)

// Base is the reference time of the suite, at microsecond precision (what
// PostgreSQL keeps).
var Base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// Letter returns a dead letter for tests: id, group (fingerprint), original
// topic and handler, failed at Base+offset.
func Letter(id, group, topic, handler string, offset time.Duration) dlqops.Record {
	return dlqops.Record{
		ID: id, UUID: id, OriginalUUID: id, DLQTopic: topic + ".dlq", OriginalTopic: topic, Handler: handler,
		Fingerprint: group, ErrorClass: "permanent", ErrorType: "*errors.errorString",
		Error: "failure of " + id, Attempts: 3, FailedAt: Base.Add(offset), ReceivedAt: Base.Add(offset + time.Second),
		Metadata: map[string]string{dlq.KeyFingerprint: group, dlq.KeyOriginalTopic: topic, "k": "v " + id},
		Payload:  []byte(`{"id":"` + id + `"}`), Status: dlqops.StatusNew,
	}
}

// NewStore returns an empty store for one subtest; the suite calls it once
// per subtest.
type NewStore func(t *testing.T) dlqops.Store

// Run runs the conformance suite. It is one long function on purpose: a
// flat list of independent t.Run subtests, each a few lines against a
// fresh store, read and extended one at a time (the shape of watermill's
// pubsub/tests suite); splitting it would only add indirection.
func Run(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	t.Run("AddIsIdempotent", func(t *testing.T) {
		s := newStore(t)
		a := Letter("a", "g1", "orders", "h", 0)
		n, err := s.Add(ctx, a, Letter("b", "g1", "orders", "h", time.Second))
		if err != nil || n != 2 {
			t.Fatalf("Add: got %d, %v want 2, nil", n, err)
		}
		a.Error = "changed"
		n, err = s.Add(ctx, a, a)
		if err != nil || n != 0 {
			t.Fatalf("re-Add: got %d, %v want 0, nil", n, err)
		}
		got, err := s.Get(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		if got.Error != "failure of a" {
			t.Errorf("redelivery overwrote the record: error %q", got.Error)
		}
	})
	t.Run("IdentityIncludesConsumer", func(t *testing.T) {
		identityIncludesConsumer(t, newStore(t))
	})
	t.Run("RoundTrip", func(t *testing.T) {
		s := newStore(t)
		want := Letter("rt", "0123456789abcdef", "orders", "handler-ü", 0)
		want.Payload = []byte{0, 1, 2, 0xff, 'x'}
		want.Metadata["unicode"] = "ünïcödé ✓"
		want.ReplayCount = 2
		want.ConsumerGroup = "cg"
		if _, err := s.Add(ctx, want); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, "rt")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Payload, want.Payload) {
			t.Errorf("payload: got %v want %v", got.Payload, want.Payload)
		}
		for k, v := range want.Metadata {
			if got.Metadata[k] != v {
				t.Errorf("metadata %s: got %q want %q", k, got.Metadata[k], v)
			}
		}
		if !got.FailedAt.Equal(want.FailedAt) || !got.ReceivedAt.Equal(want.ReceivedAt) {
			t.Errorf("times: got %v/%v want %v/%v", got.FailedAt, got.ReceivedAt, want.FailedAt, want.ReceivedAt)
		}
		if got.Handler != want.Handler || got.ReplayCount != 2 || got.ConsumerGroup != "cg" || got.Status != dlqops.StatusNew ||
			got.Attempts != 3 || got.ErrorClass != "permanent" || got.OriginalUUID != "rt" || got.DLQTopic != "orders.dlq" {
			t.Errorf("fields: got %+v", got)
		}
		if _, err := s.Get(ctx, "missing"); !errors.Is(err, dlqops.ErrNotFound) {
			t.Errorf("Get(missing): got %v want ErrNotFound", err)
		}
	})
	t.Run("OversizedLetterIsBounded", func(t *testing.T) {
		s := newStore(t)
		for i, tc := range []struct {
			name       string
			keys, bigs int
		}{
			{"4,000 metadata keys", 4000, 0},
			{"20,000 metadata keys and three 4 MB values", 20000, 3},
		} {
			dl := Letter(fmt.Sprintf("big-%d", i), "g", "orders", "h", time.Duration(i)*time.Second)
			for k := range tc.keys {
				dl.Metadata[fmt.Sprintf("hop-%05d", k)] = fmt.Sprintf("value %d", k)
			}
			for k := range tc.bigs {
				dl.Metadata[fmt.Sprintf("big-%d", k)] = strings.Repeat("x", 4<<20)
			}
			want := dlqops.BoundRecord(dl)
			if want.Truncated == "" {
				t.Fatalf("%s: BoundRecord cut nothing", tc.name)
			}
			if n, err := s.Add(ctx, dl); err != nil || n != 1 {
				t.Fatalf("%s: Add: got %d, %v want 1, nil", tc.name, n, err)
			}
			got, err := s.Get(ctx, dl.ID)
			if err != nil {
				t.Fatalf("%s: Get: %v", tc.name, err)
			}
			if got.Truncated != want.Truncated {
				t.Errorf("%s: Truncated %q want %q", tc.name, got.Truncated, want.Truncated)
			}
			if !maps.Equal(got.Metadata, want.Metadata) {
				t.Errorf("%s: stored %d metadata keys, not the %d BoundRecord keeps", tc.name, len(got.Metadata), len(want.Metadata))
			}
			if got.Metadata[dlq.KeyFingerprint] != "g" || got.Metadata[dlq.KeyOriginalTopic] != "orders" {
				t.Errorf("%s: Levee keys lost in the cut", tc.name)
			}
			if !bytes.Equal(got.Payload, dl.Payload) {
				t.Errorf("%s: payload changed", tc.name)
			}
		}
		listed, err := s.List(ctx, dlqops.Filter{})
		if err != nil || len(listed) != 2 || listed[0].Truncated == "" || listed[1].Truncated == "" {
			t.Errorf("List: got %d letters, %v; want both with Truncated", len(listed), err)
		}
		mustAdd(t, s, Letter("small", "g", "orders", "h", time.Hour))
		if got, err := s.Get(ctx, "small"); err != nil || got.Truncated != "" {
			t.Errorf("a letter within the caps: Truncated %q, %v; want kept whole", got.Truncated, err)
		}
	})
	t.Run("ListFilters", func(t *testing.T) {
		s := newStore(t)
		mustAdd(t, s,
			Letter("1", "g1", "orders", "ship", 0),
			Letter("2", "g1", "payments", "pay", time.Minute),
			Letter("3", "g2", "orders", "ship", 2*time.Minute),
			Letter("4", "g2", "orders", "ship", 3*time.Minute),
		)
		if n, err := s.SetStatus(ctx, dlqops.Filter{IDs: []string{"4"}}, dlqops.StatusArchived); err != nil || n != 1 {
			t.Fatalf("SetStatus: %d %v", n, err)
		}
		tests := []struct {
			name string
			f    dlqops.Filter
			want []string
		}{
			{"all", dlqops.Filter{}, []string{"1", "2", "3", "4"}},
			{"group", dlqops.Filter{Group: "g1"}, []string{"1", "2"}},
			{"topic", dlqops.Filter{Topic: "orders"}, []string{"1", "3", "4"}},
			{"handler", dlqops.Filter{Handler: "pay"}, []string{"2"}},
			{"dlq topic", dlqops.Filter{DLQTopic: "payments.dlq"}, []string{"2"}},
			{"ids", dlqops.Filter{IDs: []string{"3", "1", "x"}}, []string{"1", "3"}},
			{"status", dlqops.Filter{Statuses: []dlqops.Status{dlqops.StatusArchived}}, []string{"4"}},
			{"since", dlqops.Filter{Since: Base.Add(time.Minute)}, []string{"2", "3", "4"}},
			{"until", dlqops.Filter{Until: Base.Add(2 * time.Minute)}, []string{"1", "2"}},
			{"range", dlqops.Filter{Since: Base.Add(time.Minute), Until: Base.Add(3 * time.Minute)}, []string{"2", "3"}},
			{"limit", dlqops.Filter{Topic: "orders", Limit: 2}, []string{"1", "3"}},
			{"none", dlqops.Filter{Group: "nope"}, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := s.List(ctx, tt.f)
				if err != nil {
					t.Fatal(err)
				}
				if ids := IDs(got); !slices.Equal(ids, tt.want) {
					t.Errorf("got %v want %v", ids, tt.want)
				}
			})
		}
		if _, err := s.List(ctx, dlqops.Filter{Statuses: []dlqops.Status{"bogus"}}); !errors.Is(err, dlqops.ErrInvalidQuery) {
			t.Errorf("bad status: got %v want ErrInvalidQuery", err)
		}
	})
	t.Run("Groups", func(t *testing.T) {
		s := newStore(t)
		a := Letter("1", "g1", "orders", "ship", 0)
		b := Letter("2", "g1", "payments", "pay", time.Minute)
		c := Letter("3", "g1", "orders", "ship", 10*time.Minute)
		c.Error, c.ErrorClass = "newest error", "validation"
		d := Letter("4", "g2", "orders", "ship", 5*time.Minute)
		mustAdd(t, s, a, b, c, d)
		claimAndMark(t, s, "1")
		if _, err := s.SetStatus(ctx, dlqops.Filter{IDs: []string{"2"}}, dlqops.StatusArchived); err != nil {
			t.Fatal(err)
		}
		groups, err := s.Groups(ctx, dlqops.GroupQuery{WindowStart: Base.Add(5 * time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		if len(groups) != 2 {
			t.Fatalf("got %d groups want 2: %+v", len(groups), groups)
		}
		g := groups[0]
		want := dlqops.Group{Key: "g1", By: dlqops.GroupByFingerprint, Count: 3, New: 1, Replayed: 1, Archived: 1, InWindow: 1,
			FirstSeen: a.FailedAt, LastSeen: c.FailedAt, OldestNew: c.FailedAt,
			Topics: []string{"orders", "payments"}, Handlers: []string{"pay", "ship"},
			SampleError: "newest error", ErrorClass: "validation"}
		if err := EqualGroup(g, want); err != nil {
			t.Error(err)
		}
		if groups[1].Key != "g2" || groups[1].Count != 1 || groups[1].InWindow != 1 || !groups[1].OldestNew.Equal(d.FailedAt) {
			t.Errorf("g2: got %+v", groups[1])
		}
		byTopic, err := s.Groups(ctx, dlqops.GroupQuery{By: dlqops.GroupByTopic})
		if err != nil {
			t.Fatal(err)
		}
		if len(byTopic) != 2 || byTopic[0].Key != "orders" || byTopic[0].Count != 3 || byTopic[1].Key != "payments" {
			t.Errorf("by topic: got %+v", byTopic)
		}
		byHandler, err := s.Groups(ctx, dlqops.GroupQuery{By: dlqops.GroupByHandler, Filter: dlqops.Filter{Group: "g1"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(byHandler) != 2 || byHandler[0].Key != "ship" || byHandler[0].Count != 2 || byHandler[1].Key != "pay" {
			t.Errorf("by handler in g1: got %+v", byHandler)
		}
		if _, err := s.Groups(ctx, dlqops.GroupQuery{By: "bogus"}); !errors.Is(err, dlqops.ErrInvalidQuery) {
			t.Errorf("bad group by: got %v want ErrInvalidQuery", err)
		}
	})
	t.Run("ClaimLease", func(t *testing.T) {
		s := newStore(t)
		mustAdd(t, s, Letter("1", "g", "t", "h", 0), Letter("2", "g", "t", "h", time.Second), Letter("3", "g", "t", "h", 2*time.Second))
		req := dlqops.ClaimRequest{Owner: "A", Now: Base, Lease: time.Minute, Limit: 2}
		got, err := s.Claim(ctx, req)
		if err != nil || !slices.Equal(IDs(got), []string{"1", "2"}) {
			t.Fatalf("A claim: got %v, %v want [1 2]", IDs(got), err)
		}
		req.Owner = "B"
		got, err = s.Claim(ctx, req)
		if err != nil || !slices.Equal(IDs(got), []string{"3"}) {
			t.Fatalf("B claim during A's lease: got %v, %v want [3]", IDs(got), err)
		}
		if err := s.MarkReplayed(ctx, "1", "B", "u", Base); !errors.Is(err, dlqops.ErrClaimLost) {
			t.Errorf("B marks A's letter: got %v want ErrClaimLost", err)
		}
		if err := s.MarkReplayed(ctx, "1", "A", "replay-1", Base); err != nil {
			t.Fatal(err)
		}
		// A crashes holding 2; after the lease C takes it over.
		req.Owner, req.Now = "C", Base.Add(2*time.Minute)
		got, err = s.Claim(ctx, req)
		if err != nil || !slices.Equal(IDs(got), []string{"2", "3"}) {
			t.Fatalf("C claim after leases: got %v, %v want [2 3]", IDs(got), err)
		}
		if err := s.Release(ctx, "2", "A", "late"); !errors.Is(err, dlqops.ErrClaimLost) {
			t.Errorf("A releases after losing the claim: got %v want ErrClaimLost", err)
		}
		if err := s.Release(ctx, "2", "C", "held: reason"); err != nil {
			t.Fatal(err)
		}
		one, _ := s.Get(ctx, "1")
		two, _ := s.Get(ctx, "2")
		if one.Status != dlqops.StatusReplayed || one.ReplayUUID != "replay-1" || !one.ReplayedAt.Equal(Base) {
			t.Errorf("1 after mark: got %+v", one)
		}
		if two.Status != dlqops.StatusNew || two.Reason != "held: reason" {
			t.Errorf("2 after release: got status %s reason %q", two.Status, two.Reason)
		}
		// the cursor skips what the run already walked
		req.Owner, req.Now = "D", Base.Add(time.Hour)
		req.After = &dlqops.Cursor{At: two.FailedAt, ID: two.ID}
		got, err = s.Claim(ctx, req)
		if err != nil || !slices.Equal(IDs(got), []string{"3"}) {
			t.Fatalf("claim after cursor: got %v, %v want [3]", IDs(got), err)
		}
		// force: replayed letters are claimable when asked for
		req.After, req.Owner = nil, "E"
		req.Filter.Statuses = []dlqops.Status{dlqops.StatusReplayed}
		got, err = s.Claim(ctx, req)
		if err != nil || !slices.Equal(IDs(got), []string{"1"}) {
			t.Fatalf("claim replayed: got %v, %v want [1]", IDs(got), err)
		}
		if _, err := s.Claim(ctx, dlqops.ClaimRequest{Owner: "", Now: Base, Lease: time.Minute, Limit: 1}); !errors.Is(err, dlqops.ErrInvalidQuery) {
			t.Errorf("claim without owner: got %v want ErrInvalidQuery", err)
		}
	})
	t.Run("CursorWalksTiesBytewise", func(t *testing.T) {
		s := newStore(t)
		// same failure time; "A3" < "a-2" < "a1" < "b" bytewise, not in
		// most natural-language collations
		for _, id := range []string{"a1", "b", "A3", "a-2"} {
			mustAdd(t, s, Letter(id, "g", "t", "h", 0))
		}
		var walked []string
		var after *dlqops.Cursor
		for range 10 {
			got, err := s.Claim(ctx, dlqops.ClaimRequest{Owner: "w", Now: Base, Lease: time.Hour, Limit: 1, After: after})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) == 0 {
				break
			}
			walked = append(walked, got[0].ID)
			if err := s.Release(ctx, got[0].ID, "w", "held"); err != nil { // stays new, as a held letter
				t.Fatal(err)
			}
			after = &dlqops.Cursor{At: got[0].FailedAt, ID: got[0].ID}
		}
		if want := []string{"A3", "a-2", "a1", "b"}; !slices.Equal(walked, want) {
			t.Errorf("walked %v want %v", walked, want)
		}
	})
	t.Run("SetStatusSkipsClaimed", func(t *testing.T) {
		s := newStore(t)
		mustAdd(t, s, Letter("1", "g", "t", "h", 0), Letter("2", "g", "t", "h", time.Second))
		if _, err := s.Claim(ctx, dlqops.ClaimRequest{Filter: dlqops.Filter{IDs: []string{"1"}}, Owner: "A", Now: Base, Lease: time.Minute, Limit: 1}); err != nil {
			t.Fatal(err)
		}
		n, err := s.SetStatus(ctx, dlqops.Filter{Group: "g"}, dlqops.StatusArchived)
		if err != nil || n != 1 {
			t.Fatalf("archive: got %d, %v want 1", n, err)
		}
		if got, _ := s.Get(ctx, "1"); got.Status != dlqops.StatusNew {
			t.Errorf("claimed letter archived: %s", got.Status)
		}
		if n, err := s.SetStatus(ctx, dlqops.Filter{}, "bogus"); !errors.Is(err, dlqops.ErrInvalidQuery) || n != 0 {
			t.Errorf("bad status: got %d, %v", n, err)
		}
	})
	t.Run("Prune", func(t *testing.T) {
		s := newStore(t)
		for i := range 10 {
			mustAdd(t, s, Letter(fmt.Sprintf("%02d", i), "g", "t", "h", time.Duration(i)*time.Hour))
		}
		n, err := s.Prune(ctx, dlqops.Retention{MaxAge: 5 * time.Hour}, Base.Add(9*time.Hour))
		if err != nil || n != 4 {
			t.Fatalf("prune by age: got %d, %v want 4", n, err)
		}
		n, err = s.Prune(ctx, dlqops.Retention{MaxCount: 3}, Base.Add(9*time.Hour))
		if err != nil || n != 3 {
			t.Fatalf("prune by count: got %d, %v want 3", n, err)
		}
		left, _ := s.List(ctx, dlqops.Filter{})
		if !slices.Equal(IDs(left), []string{"07", "08", "09"}) {
			t.Errorf("left: got %v want newest three", IDs(left))
		}
	})
	t.Run("PreviewPruneMatchesPrune", func(t *testing.T) {
		for _, r := range []dlqops.Retention{{MaxAge: 5 * time.Hour}, {MaxCount: 3}, {MaxAge: 5 * time.Hour, MaxCount: 3}, {MaxAge: 20 * time.Hour}} {
			s := newStore(t)
			for i := range 10 {
				mustAdd(t, s, Letter(fmt.Sprintf("%02d", i), fmt.Sprintf("g%d", i%2), "t", "h", time.Duration(i)*time.Hour))
			}
			now := Base.Add(9 * time.Hour)
			p, err := dlqops.PreviewPrune(ctx, s, r, now)
			if err != nil {
				t.Fatal(err)
			}
			if left, _ := s.List(ctx, dlqops.Filter{}); len(left) != 10 {
				t.Fatalf("%+v: the preview deleted letters: %d left", r, len(left))
			}
			n, err := s.Prune(ctx, r, now)
			if err != nil {
				t.Fatal(err)
			}
			if p.Total() != n {
				t.Errorf("%+v: preview %d (%+v), prune deleted %d", r, p.Total(), p, n)
			}
			sum := 0
			for _, g := range p.ByAge {
				sum += g.Count
			}
			if sum != p.Aged {
				t.Errorf("%+v: groups sum to %d, aged %d", r, sum, p.Aged)
			}
		}
	})
	t.Run("ConcurrentReplayersReplayOncePerRun", func(t *testing.T) {
		replayersOncePerRun(t, newStore(t))
	})
	t.Run("ConcurrentClaimsAreExclusive", func(t *testing.T) {
		s := newStore(t)
		const total = 300
		var all []dlqops.Record
		for i := range total {
			all = append(all, Letter(fmt.Sprintf("c%03d", i), "g", "t", "h", time.Duration(i)*time.Millisecond))
		}
		mustAdd(t, s, all...)
		var mu sync.Mutex
		seen := map[string]int{}
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				owner := fmt.Sprintf("w%d", w)
				for {
					got, err := s.Claim(ctx, dlqops.ClaimRequest{Owner: owner, Now: Base, Lease: time.Hour, Limit: 7})
					if err != nil {
						t.Error(err)
						return
					}
					if len(got) == 0 {
						return
					}
					for _, dl := range got {
						mu.Lock()
						seen[dl.ID]++
						mu.Unlock()
						if err := s.MarkReplayed(ctx, dl.ID, owner, "r-"+dl.ID, Base); err != nil {
							t.Error(err)
						}
					}
				}
			})
		}
		wg.Wait()
		if len(seen) != total {
			t.Errorf("claimed %d distinct letters want %d", len(seen), total)
		}
		for id, n := range seen {
			if n != 1 {
				t.Errorf("%s claimed %d times", id, n)
			}
		}
	})
}

// deadLetter builds a dead letter message as dlq.Retrier writes it: uuid,
// payload and the consumer's keys.
func deadLetter(uuid, payload, topic, handler, group, errText string) *message.Message {
	m := message.NewMessage(uuid, []byte(payload))
	m.Metadata[dlq.KeyOriginalTopic] = topic
	m.Metadata[dlq.KeyHandler] = handler
	if group != "" {
		m.Metadata[dlq.KeyConsumerGroup] = group
	}
	m.Metadata[dlq.KeyError] = errText
	m.Metadata[dlq.KeyErrorClass] = "permanent"
	m.Metadata[dlq.KeyFingerprint] = dlq.Fingerprint("*errors.errorString", errText)
	m.Metadata[dlq.KeyLastFailureAt] = dlq.FormatTime(Base)
	m.Metadata[dlq.KeyDLQTopic] = topic + ".dlq"
	m.Metadata["customer"] = "c-1"
	return m
}

// identityIncludesConsumer: a dead letter's ID (dlqops.NewRecord) includes the
// consumer, so two handlers or groups failing one message keep two letters,
// a forged letter reusing the UUID (arriving first) hides none of them, and
// a redelivery of a letter is still recognised as the same letter.
func identityIncludesConsumer(t *testing.T, s dlqops.Store) {
	ctx := context.Background()
	const uuid = "0f8fad5b-d9cb-469f-a165-70867728950e"
	rec := func(m *message.Message, dlqTopic string) dlqops.Record { return dlqops.NewRecord(m, dlqTopic, Base) }
	victim := deadLetter(uuid, `{"order":1}`, "orders", "ship", "", "warehouse offline")
	// what a producer can publish straight onto the DLQ topic, first
	forgedOtherConsumer := deadLetter(uuid, `{"order":1}`, "spam", "spam-handler", "", "x")
	forgedPayload := deadLetter(uuid, `{"order":"forged"}`, "orders", "ship", "", "warehouse offline")
	forgedLineage := deadLetter(uuid, `{"order":1}`, "orders", "ship", "", "warehouse offline")
	forgedLineage.Metadata[dlq.KeyReplayCount] = "99"
	otherHandler := deadLetter(uuid, `{"order":1}`, "orders", "bill", "", "ledger closed")
	otherGroup := deadLetter(uuid, `{"order":1}`, "orders", "ship", "audit", "warehouse offline")
	// the victim's letter delivered again: transport keys and a new trace
	// context differ; and dead-lettered again by the same consumer after a
	// lost ack: the failure keys differ
	redelivered := victim.Copy()
	redelivered.Metadata[dlq.KeyDeliveryCount] = "2"
	redelivered.Metadata["_watermill_amqp_redelivered"] = "true"
	redelivered.Metadata["traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	again := victim.Copy()
	again.Metadata[dlq.KeyError] = "warehouse offline again"
	again.Metadata[dlq.KeyAttempts] = "5"
	again.Metadata[dlq.KeyLastFailureAt] = dlq.FormatTime(Base.Add(time.Minute))

	steps := []struct {
		name     string
		dl       dlqops.Record
		wantNew  int
		sameAsID string
	}{
		{name: "forged, other consumer", dl: rec(forgedOtherConsumer, "orders.dlq"), wantNew: 1},
		{name: "forged, other payload", dl: rec(forgedPayload, "orders.dlq"), wantNew: 1},
		{name: "forged, other lineage", dl: rec(forgedLineage, "orders.dlq"), wantNew: 1},
		{name: "victim", dl: rec(victim, "orders.dlq"), wantNew: 1},
		{name: "other handler", dl: rec(otherHandler, "orders.dlq"), wantNew: 1},
		{name: "other group", dl: rec(otherGroup, "orders.dlq"), wantNew: 1},
		{name: "other DLQ topic", dl: rec(victim, "all.dlq"), wantNew: 1},
		{name: "redelivered", dl: rec(redelivered, "orders.dlq"), wantNew: 0, sameAsID: rec(victim, "orders.dlq").ID},
		{name: "dead-lettered again", dl: rec(again, "orders.dlq"), wantNew: 0, sameAsID: rec(victim, "orders.dlq").ID},
	}
	for _, st := range steps {
		n, err := s.Add(ctx, st.dl)
		if err != nil || n != st.wantNew {
			t.Errorf("%s: Add got %d, %v want %d", st.name, n, err, st.wantNew)
		}
		if st.sameAsID != "" && st.dl.ID != st.sameAsID {
			t.Errorf("%s: id %s want the victim's %s", st.name, st.dl.ID, st.sameAsID)
		}
	}
	all, err := s.List(ctx, dlqops.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 7 {
		t.Fatalf("stored %d letters want 7 (3 forged, victim, other handler, other group, other DLQ topic): %v", len(all), IDs(all))
	}
	got, err := s.Get(ctx, rec(victim, "orders.dlq").ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.UUID != uuid || got.Handler != "ship" || got.OriginalTopic != "orders" || string(got.Payload) != `{"order":1}` ||
		got.Error != "warehouse offline" || got.ReplayCount != 0 {
		t.Errorf("victim's letter: got %+v", got)
	}
	byHandler, err := s.List(ctx, dlqops.Filter{Handler: "bill"})
	if err != nil || len(byHandler) != 1 || byHandler[0].Error != "ledger closed" {
		t.Errorf("other handler's letter: got %v, %v", byHandler, err)
	}
}

func mustAdd(t *testing.T, s dlqops.Store, letters ...dlqops.Record) {
	t.Helper()
	if _, err := s.Add(context.Background(), letters...); err != nil {
		t.Fatal(err)
	}
}

func claimAndMark(t *testing.T, s dlqops.Store, id string) {
	t.Helper()
	ctx := context.Background()
	got, err := s.Claim(ctx, dlqops.ClaimRequest{Filter: dlqops.Filter{IDs: []string{id}}, Owner: "m", Now: Base, Lease: time.Minute, Limit: 1})
	if err != nil || len(got) != 1 {
		t.Fatalf("claim %s: %v %v", id, IDs(got), err)
	}
	if err := s.MarkReplayed(ctx, id, "m", "r", Base); err != nil {
		t.Fatal(err)
	}
}

// IDs returns the IDs of letters in order.
func IDs(letters []dlqops.Record) []string {
	var out []string
	for _, dl := range letters {
		out = append(out, dl.ID)
	}
	return out
}

// EqualGroup compares two groups field by field (times with Equal).
func EqualGroup(got, want dlqops.Group) error {
	if got.Key != want.Key || got.By != want.By || got.Count != want.Count || got.New != want.New ||
		got.Replayed != want.Replayed || got.Archived != want.Archived || got.InWindow != want.InWindow ||
		!got.FirstSeen.Equal(want.FirstSeen) || !got.LastSeen.Equal(want.LastSeen) || !got.OldestNew.Equal(want.OldestNew) ||
		!slices.Equal(got.Topics, want.Topics) || !slices.Equal(got.Handlers, want.Handlers) ||
		got.SampleError != want.SampleError || got.ErrorClass != want.ErrorClass {
		return fmt.Errorf("group:\n got %+v\nwant %+v", got, want)
	}
	return nil
}
