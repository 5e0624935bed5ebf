//go:build integration

package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee/adapters/redisstore"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/dlq/dlqtest"
	"github.com/levee-dev/levee/internal/brokertest"
	"github.com/redis/go-redis/v9"
)

// redisURL is the test server (internal/brokertest).
func redisURL() string { return brokertest.RedisURL() }

// newPrefix returns a unique key prefix and deletes its keys when the test
// ends.
func newPrefix(t testing.TB) string {
	t.Helper()
	return brokertest.Fresh(t, "levee_test", func(p string) error {
		if n := deleteKeys(t, p); n < 0 {
			return errors.New("unlink failed")
		}
		return nil
	})
}

// keysOf returns the keys under prefix.
func keysOf(t testing.TB, prefix string) []string {
	t.Helper()
	ro, err := redis.ParseURL(redisURL())
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(ro)
	defer c.Close()
	var keys []string
	iter := c.Scan(context.Background(), 0, prefix+":*", 1000).Iterator()
	for iter.Next(context.Background()) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	return keys
}

// deleteKeys deletes the keys under prefix and returns how many (-1 on
// error).
func deleteKeys(t testing.TB, prefix string) int {
	keys := keysOf(t, prefix)
	if len(keys) == 0 {
		return 0
	}
	ro, _ := redis.ParseURL(redisURL())
	c := redis.NewClient(ro)
	defer c.Close()
	for chunk := range slices.Chunk(keys, 1000) {
		if err := c.Unlink(context.Background(), chunk...).Err(); err != nil {
			return -1
		}
	}
	return len(keys)
}

func openStore(t testing.TB, prefix string, opts ...redisstore.Option) *redisstore.Store {
	t.Helper()
	s, err := redisstore.Open(context.Background(), redisURL(), append([]redisstore.Option{redisstore.WithPrefix(prefix)}, opts...)...)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	dlqtest.Run(t, func(t *testing.T) dlqops.Store { return openStore(t, newPrefix(t)) })
}

func TestConformanceLetterByLetter(t *testing.T) {
	dlqtest.Run(t, func(t *testing.T) dlqops.Store { return openStore(t, newPrefix(t), redisstore.WithBatchSize(1)) })
}

// TestDataLayout pins the documented key layout (doc.go) and checks that
// deleting every letter leaves no key behind: no counter or index leaks.
func TestDataLayout(t *testing.T) {
	ctx := context.Background()
	p := newPrefix(t)
	s := openStore(t, p)
	a := dlqtest.Letter("a", "g1", "orders", "ship", 0)
	b := dlqtest.Letter("b", "g1", "payments", "pay", time.Second)
	if _, err := s.Add(ctx, a, b); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetStatus(ctx, dlqops.Filter{IDs: []string{"b"}}, dlqops.StatusArchived); err != nil {
		t.Fatal(err)
	}
	k := p + ":dlq:"
	want := []string{k + "all", k + "g:f:g1", k + "g:h:pay", k + "g:h:ship", k + "g:t:orders", k + "g:t:payments",
		k + "i:f:g1", k + "i:h:pay", k + "i:h:ship", k + "i:t:orders", k + "i:t:payments",
		k + "k:f", k + "k:h", k + "k:t", k + "n:f:g1", k + "n:h:ship", k + "n:t:orders",
		k + "o:c:f", k + "o:c:h", k + "o:c:t", k + "o:l:f", k + "o:l:h", k + "o:l:t", k + "r:a", k + "r:b", k + "s:archived", k + "s:new"}
	if got := keysOf(t, p); !slices.Equal(got, want) {
		t.Errorf("keys:\n got %v\nwant %v", got, want)
	}
	c := s.Client()
	if v, _ := c.HGet(ctx, k+"r:a", "m:k").Result(); v != "v a" {
		t.Errorf("metadata field m:k = %q", v)
	}
	if v, _ := c.HGetAll(ctx, k+"g:f:g1").Result(); v["c"] != "2" || v["s:new"] != "1" || v["s:archived"] != "1" ||
		v["t:orders"] != "1" || v["t:payments"] != "1" || v["h:ship"] != "1" || v["h:pay"] != "1" {
		t.Errorf("group counters: %v", v)
	}
	if v, _ := c.ZRangeWithScores(ctx, k+"o:c:t", 0, -1).Result(); len(v) != 2 || v[0].Member != "orders" || v[0].Score != -1 || v[1].Member != "payments" {
		t.Errorf("order set by count: %v", v)
	}
	if v, _ := c.ZRangeWithScores(ctx, k+"o:l:f", 0, -1).Result(); len(v) != 1 || v[0].Score != -float64(b.FailedAt.UnixMicro()) {
		t.Errorf("order set by newest: %v want g1 at -%d", v, b.FailedAt.UnixMicro())
	}
	n, err := s.Prune(ctx, dlqops.Retention{MaxCount: 1}, dlqtest.Base)
	if err != nil || n != 1 {
		t.Fatalf("prune: %d %v", n, err)
	}
	if v, _ := c.HGetAll(ctx, k+"g:f:g1").Result(); v["c"] != "1" || v["s:new"] != "" || v["t:orders"] != "" {
		t.Errorf("group counters after prune: %v", v)
	}
	if n, err := s.Prune(ctx, dlqops.Retention{MaxAge: time.Nanosecond}, dlqtest.Base.Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("prune all: %d %v", n, err)
	}
	if got := keysOf(t, p); len(got) != 0 {
		t.Errorf("keys left after deleting every letter: %v", got)
	}
}

// TestMatchesMemStore applies one random sequence of operations to the
// Redis store and to dlqops.MemStore, the reference, and compares every
// query after each step: Groups (through the counters and through the
// scanning path), List with each filter, and Claim.
func TestMatchesMemStore(t *testing.T) {
	ctx := context.Background()
	rs := openStore(t, newPrefix(t), redisstore.WithBatchSize(7))
	ms := dlqops.NewMemStore()
	rng := rand.New(rand.NewPCG(1, 2))
	groups := []string{"g0", "g1", "g2", dlqops.UnknownGroup}
	topics := []string{"orders", "payments", ""}
	handlers := []string{"ship", "pay", "h:x"}
	statuses := []dlqops.Status{dlqops.StatusNew, dlqops.StatusReplayed, dlqops.StatusArchived}
	next := 0
	now := dlqtest.Base
	randFilter := func() dlqops.Filter {
		var f dlqops.Filter
		if rng.IntN(3) == 0 {
			f.Group = groups[rng.IntN(len(groups))]
		}
		if rng.IntN(3) == 0 {
			f.Topic = topics[rng.IntN(len(topics)-1)]
		}
		if rng.IntN(4) == 0 {
			f.Handler = handlers[rng.IntN(len(handlers))]
		}
		if rng.IntN(4) == 0 {
			f.Statuses = []dlqops.Status{statuses[rng.IntN(3)]}
			if rng.IntN(2) == 0 {
				f.Statuses = append(f.Statuses, statuses[rng.IntN(3)])
			}
		}
		if rng.IntN(4) == 0 {
			f.Since = dlqtest.Base.Add(time.Duration(rng.IntN(200)) * time.Second)
		}
		if rng.IntN(4) == 0 {
			f.Until = dlqtest.Base.Add(time.Duration(200+rng.IntN(200)) * time.Second)
		}
		if rng.IntN(5) == 0 {
			f.DLQTopic = "orders.dlq"
		}
		if rng.IntN(6) == 0 {
			for range 1 + rng.IntN(8) {
				f.IDs = append(f.IDs, fmt.Sprintf("l%03d", rng.IntN(next+2)))
			}
		}
		if rng.IntN(3) == 0 {
			f.Limit = 1 + rng.IntN(10)
		}
		return f
	}
	compare := func(step int, what string, got, want any) {
		t.Helper()
		g, w := fmt.Sprintf("%+v", got), fmt.Sprintf("%+v", want)
		if g != w {
			t.Fatalf("step %d %s:\n got %s\nwant %s", step, what, g, w)
		}
	}
	for step := range 300 {
		switch op := rng.IntN(10); {
		case op < 3: // add, with redeliveries
			var batch []dlqops.Record
			for range 1 + rng.IntN(12) {
				id := fmt.Sprintf("l%03d", next)
				if rng.IntN(5) == 0 && next > 0 {
					id = fmt.Sprintf("l%03d", rng.IntN(next))
				} else {
					next++
				}
				l := dlqtest.Letter(id, groups[rng.IntN(len(groups))], topics[rng.IntN(len(topics))],
					handlers[rng.IntN(len(handlers))], time.Duration(rng.IntN(400))*time.Second)
				l.Error = "error " + id
				batch = append(batch, l)
			}
			n1, err1 := rs.Add(ctx, batch...)
			n2, err2 := ms.Add(ctx, batch...)
			compare(step, "add", []any{n1, err1}, []any{n2, err2})
		case op < 5: // claim, then mark or release
			req := dlqops.ClaimRequest{Filter: randFilter(), Owner: fmt.Sprintf("o%d", rng.IntN(3)), Now: now,
				Lease: time.Duration(1+rng.IntN(60)) * time.Second, Limit: 1 + rng.IntN(5)}
			if rng.IntN(3) == 0 {
				req.After = &dlqops.Cursor{At: dlqtest.Base.Add(time.Duration(rng.IntN(400)) * time.Second), ID: fmt.Sprintf("l%03d", rng.IntN(next+1))}
			}
			req.Filter.Limit = 0
			got, err1 := rs.Claim(ctx, req)
			want, err2 := ms.Claim(ctx, req)
			compare(step, "claim", []any{dlqtest.IDs(got), err1}, []any{dlqtest.IDs(want), err2})
			for _, dl := range got {
				switch rng.IntN(3) {
				case 0:
					e1 := rs.MarkReplayed(ctx, dl.ID, req.Owner, "r-"+dl.ID, now)
					e2 := ms.MarkReplayed(ctx, dl.ID, req.Owner, "r-"+dl.ID, now)
					compare(step, "mark", e1, e2)
				case 1:
					e1 := rs.Release(ctx, dl.ID, req.Owner, "held "+dl.ID)
					e2 := ms.Release(ctx, dl.ID, req.Owner, "held "+dl.ID)
					compare(step, "release", e1, e2)
				}
			}
		case op < 7:
			f, st := randFilter(), statuses[rng.IntN(3)]
			n1, err1 := rs.SetStatus(ctx, f, st)
			n2, err2 := ms.SetStatus(ctx, f, st)
			compare(step, fmt.Sprintf("set status %+v %s", f, st), []any{n1, err1}, []any{n2, err2})
		case op < 8:
			r := dlqops.Retention{}
			if rng.IntN(2) == 0 {
				r.MaxAge = time.Duration(300+rng.IntN(400)) * time.Second
			} else {
				r.MaxCount = 20 + rng.IntN(60)
			}
			pnow := dlqtest.Base.Add(10 * time.Minute)
			n1, err1 := rs.Prune(ctx, r, pnow)
			n2, err2 := ms.Prune(ctx, r, pnow)
			compare(step, "prune", []any{n1, err1}, []any{n2, err2})
		default:
			now = now.Add(time.Duration(rng.IntN(30)) * time.Second)
		}
		// every query agrees after every step
		for _, by := range []dlqops.GroupBy{dlqops.GroupByFingerprint, dlqops.GroupByTopic, dlqops.GroupByHandler} {
			q := dlqops.GroupQuery{By: by, WindowStart: dlqtest.Base.Add(time.Duration(rng.IntN(400)) * time.Second)}
			g1, err1 := rs.Groups(ctx, q)
			g2, err2 := ms.Groups(ctx, q)
			compare(step, "groups "+string(by), []any{g1, err1}, []any{g2, err2})
			q.Filter = dlqops.Filter{Statuses: statuses} // the scanning path, same answer
			g3, err3 := rs.Groups(ctx, q)
			compare(step, "scanned groups "+string(by), []any{g3, err3}, []any{g2, err2})
			q.Filter = randFilter()
			g4, err4 := rs.Groups(ctx, q)
			g5, err5 := ms.Groups(ctx, q)
			compare(step, fmt.Sprintf("filtered groups %+v", q.Filter), []any{g4, err4}, []any{g5, err5})
		}
		f := randFilter()
		l1, err1 := rs.List(ctx, f)
		l2, err2 := ms.List(ctx, f)
		compare(step, fmt.Sprintf("list %+v", f), []any{l1, err1}, []any{l2, err2})
	}
	all, _ := ms.List(ctx, dlqops.Filter{})
	t.Logf("%d letters at the end, %d ids used", len(all), next)
}

// TestConcurrentClaimersOneLetter races 8 claimers, each with its own
// client (as separate processes), for one letter at a time: exactly one
// wins while the lease holds; after the lease, exactly one other takes it
// over.
func TestConcurrentClaimersOneLetter(t *testing.T) {
	ctx := context.Background()
	p := newPrefix(t)
	const claimers, rounds = 8, 100
	stores := make([]*redisstore.Store, claimers)
	for i := range stores {
		stores[i] = openStore(t, p)
	}
	var letters []dlqops.Record
	for i := range rounds {
		letters = append(letters, dlqtest.Letter(fmt.Sprintf("x%03d", i), "g", "t", "h", time.Duration(i)*time.Millisecond))
	}
	if _, err := stores[0].Add(ctx, letters...); err != nil {
		t.Fatal(err)
	}
	race := func(id string, now time.Time) []string {
		var mu sync.Mutex
		var winners []string
		var wg sync.WaitGroup
		start := make(chan struct{})
		for w, s := range stores {
			wg.Go(func() {
				<-start
				owner := fmt.Sprintf("w%d", w)
				got, err := s.Claim(ctx, dlqops.ClaimRequest{Filter: dlqops.Filter{IDs: []string{id}}, Owner: owner, Now: now, Lease: time.Minute, Limit: 1})
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 1 {
					mu.Lock()
					winners = append(winners, owner)
					mu.Unlock()
				}
			})
		}
		close(start)
		wg.Wait()
		return winners
	}
	for i := range rounds {
		id := fmt.Sprintf("x%03d", i)
		first := race(id, dlqtest.Base)
		if len(first) != 1 {
			t.Fatalf("%s: %d claimers won %v, want exactly 1", id, len(first), first)
		}
		if again := race(id, dlqtest.Base.Add(59*time.Second)); len(again) != 0 {
			t.Fatalf("%s: claimed again during the lease by %v", id, again)
		}
		after := race(id, dlqtest.Base.Add(61*time.Second))
		if len(after) != 1 {
			t.Fatalf("%s: after the lease %d claimers won %v, want exactly 1", id, len(after), after)
		}
		// the first owner lost the claim; the new one completes it
		if first[0] != after[0] {
			if err := stores[0].MarkReplayed(ctx, id, first[0], "r", dlqtest.Base); !errors.Is(err, dlqops.ErrClaimLost) {
				t.Fatalf("%s: stale owner %s marked: %v", id, first[0], err)
			}
		}
		if err := stores[0].MarkReplayed(ctx, id, after[0], "r-"+id, dlqtest.Base); err != nil {
			t.Fatalf("%s: owner %s: %v", id, after[0], err)
		}
	}
	groups, err := stores[0].Groups(ctx, dlqops.GroupQuery{})
	if err != nil || len(groups) != 1 || groups[0].Replayed != rounds || groups[0].New != 0 {
		t.Errorf("groups: %+v %v", groups, err)
	}
}

// TestConcurrentReplayersNeverDoubleSend runs four replayers, each with its
// own client, over the same 600 dead letters: every letter is published
// exactly once.
func TestConcurrentReplayersNeverDoubleSend(t *testing.T) {
	ctx := context.Background()
	p := newPrefix(t)
	seed := openStore(t, p)
	const total = 600
	var letters []dlqops.Record
	for i := range total {
		letters = append(letters, dlqtest.Letter(fmt.Sprintf("l%04d", i), "0123456789abcdef", "orders", "h", time.Duration(i)*time.Millisecond))
	}
	if n, err := seed.Add(ctx, letters...); err != nil || n != total {
		t.Fatalf("seed: %d %v", n, err)
	}
	pub := &countingPublisher{seen: map[string]int{}}
	var wg sync.WaitGroup
	for w := range 4 {
		r, err := dlqops.NewReplayer(openStore(t, p), pub, dlqops.WithReplayRate(0), dlqops.WithReplayBatch(13), dlqops.WithReplayOwner(fmt.Sprintf("r%d", w)))
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			if _, err := r.Replay(ctx, dlqops.ReplaySelection{}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	pub.check(t, total)
	groups, err := seed.Groups(ctx, dlqops.GroupQuery{})
	if err != nil || len(groups) != 1 || groups[0].Replayed != total {
		t.Errorf("groups after replay: %+v %v", groups, err)
	}
}

// TestConcurrentAddIsIdempotent adds the same letters from 8 clients at
// once: each is stored once, and the counters count it once.
func TestConcurrentAddIsIdempotent(t *testing.T) {
	ctx := context.Background()
	p := newPrefix(t)
	var letters []dlqops.Record
	for i := range 200 {
		letters = append(letters, dlqtest.Letter(fmt.Sprintf("a%03d", i), fmt.Sprintf("g%d", i%3), "t", "h", time.Duration(i)*time.Second))
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	added := 0
	for w := range 8 {
		s := openStore(t, p, redisstore.WithBatchSize(1+w*5))
		wg.Go(func() {
			shuffled := slices.Clone(letters)
			rand.New(rand.NewPCG(uint64(w), 0)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			n, err := s.Add(ctx, shuffled...)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			added += n
			mu.Unlock()
		})
	}
	wg.Wait()
	if added != len(letters) {
		t.Errorf("added %d want %d", added, len(letters))
	}
	s := openStore(t, p)
	groups, err := s.Groups(ctx, dlqops.GroupQuery{})
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, g := range groups {
		total += g.Count
		if g.Count != g.New {
			t.Errorf("group %s: count %d new %d", g.Key, g.Count, g.New)
		}
	}
	if total != len(letters) {
		t.Errorf("groups count %d letters want %d", total, len(letters))
	}
}

// TestBinaryRoundTrip: IDs, metadata and payloads with NUL, invalid UTF-8
// and the store's own separators come back byte for byte.
func TestBinaryRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, newPrefix(t))
	dl := dlqtest.Letter("id:with:colons\x00\xff", "g:x", "t:y", "h\x00", 0)
	dl.Payload = []byte{0, 0xff, 0xfe, ':'}
	dl.Metadata["m:k"] = "v\x00\xff"
	dl.Metadata[""] = "empty key"
	dl.Metadata["id"] = "not the id field"
	if _, err := s.Add(ctx, dl); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, dl.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != dl.ID || got.Fingerprint != "g:x" || got.OriginalTopic != "t:y" || got.Handler != "h\x00" ||
		string(got.Payload) != string(dl.Payload) || len(got.Metadata) != len(dl.Metadata) {
		t.Fatalf("got %+v", got)
	}
	for k, v := range dl.Metadata {
		if got.Metadata[k] != v {
			t.Errorf("metadata %q: got %q want %q", k, got.Metadata[k], v)
		}
	}
	l, err := s.List(ctx, dlqops.Filter{Group: "g:x", Topic: "t:y", Handler: "h\x00"})
	if err != nil || len(l) != 1 {
		t.Errorf("list by binary keys: %v %v", dlqtest.IDs(l), err)
	}
	groups, err := s.Groups(ctx, dlqops.GroupQuery{By: dlqops.GroupByHandler})
	if err != nil || len(groups) != 1 || groups[0].Key != "h\x00" || !slices.Equal(groups[0].Topics, []string{"t:y"}) {
		t.Errorf("groups: %+v %v", groups, err)
	}
	if _, err := s.Add(ctx, dlqops.Record{ID: "x", Status: "bogus"}); !errors.Is(err, dlqops.ErrInvalidQuery) {
		t.Errorf("bad status: got %v", err)
	}
}

// TestPrefixesAreIsolated: two stores with different prefixes on one
// server see only their own letters.
func TestPrefixesAreIsolated(t *testing.T) {
	ctx := context.Background()
	p := newPrefix(t)
	a, b := openStore(t, p), openStore(t, p+":b")
	t.Cleanup(func() { deleteKeys(t, p+":b") })
	if _, err := a.Add(ctx, dlqtest.Letter("1", "g", "t", "h", 0)); err != nil {
		t.Fatal(err)
	}
	if l, err := b.List(ctx, dlqops.Filter{}); err != nil || len(l) != 0 {
		t.Errorf("b sees %v %v", dlqtest.IDs(l), err)
	}
	if _, err := b.Get(ctx, "1"); !errors.Is(err, dlqops.ErrNotFound) {
		t.Errorf("b.Get: %v", err)
	}
}

func TestUnreachable(t *testing.T) {
	ctx := context.Background()
	// A listener nobody reads: the kernel accepts the connection, and no
	// answer ever comes, so the dial timeout bounds the wait.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	for _, tc := range []struct {
		addr   string
		within bool // the error says the dial timeout ran out
	}{
		{"127.0.0.1:1", false},         // refused at once: no "within 1s"
		{silent.Addr().String(), true}, // accepted, never answered
	} {
		addr := tc.addr
		start := time.Now()
		_, err := redisstore.Open(ctx, "redis://"+addr+"/0", redisstore.WithDialTimeout(time.Second))
		if !errors.Is(err, redisstore.ErrUnreachable) || !errors.Is(err, dlqops.ErrStore) || !strings.Contains(err.Error(), addr) {
			t.Errorf("%s: got %v want ErrUnreachable and dlqops.ErrStore naming the address", addr, err)
		}
		if got := err != nil && strings.Contains(err.Error(), "within 1s"); got != tc.within {
			t.Errorf("%s: %v: says %q: %v, want %v", addr, err, "within 1s", got, tc.within)
		}
		// a hang check, not a timing assertion: 1 s dial timeout, 20 s bound
		if d := time.Since(start); d > 20*time.Second {
			t.Errorf("%s: Open took %s", addr, d)
		}
	}
}

// TestUsesCallerClient: New takes a client the application owns; Close
// leaves it open.
func TestUsesCallerClient(t *testing.T) {
	ctx := context.Background()
	ro, _ := redis.ParseURL(redisURL())
	c := redis.NewClient(ro)
	defer c.Close()
	s, err := redisstore.New(ctx, c, redisstore.WithPrefix(newPrefix(t)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Add(ctx, dlqtest.Letter("1", "g", "t", "h", 0)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(ctx).Err(); err != nil {
		t.Errorf("client closed by Store.Close: %v", err)
	}
}

type countingPublisher struct {
	mu   sync.Mutex
	seen map[string]int
}

func (p *countingPublisher) Publish(_ string, msgs ...*message.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range msgs {
		p.seen[m.Metadata[dlq.KeyReplayOf]]++
	}
	return nil
}

func (p *countingPublisher) Close() error { return nil }

func (p *countingPublisher) check(t *testing.T, total int) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.seen) != total {
		t.Errorf("replayed %d distinct letters want %d", len(p.seen), total)
	}
	for id, n := range p.seen {
		if n != 1 {
			t.Errorf("%s sent %d times", id, n)
		}
	}
}

// TestLargeWalks crosses the scripts' page (256 entries) and call (5,000
// entries) boundaries: a status change that empties the index it walks
// reaches every letter, and List, Claim and the scanning Groups see them
// all in order.
func TestLargeWalks(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, newPrefix(t))
	const total = 6000
	letters := make([]dlqops.Record, total)
	for i := range letters {
		// ten letters share each failure time: ties are ordered by ID
		letters[i] = dlqtest.Letter(fmt.Sprintf("w%05d", i), fmt.Sprintf("g%d", i%2), "t", "h", time.Duration(i/10)*time.Second)
	}
	if n, err := s.Add(ctx, letters...); err != nil || n != total {
		t.Fatalf("add: %d %v", n, err)
	}
	l, err := s.List(ctx, dlqops.Filter{})
	if err != nil || len(l) != total || l[0].ID != "w00000" || l[total-1].ID != fmt.Sprintf("w%05d", total-1) {
		t.Fatalf("list: %d %v", len(l), err)
	}
	for i := 1; i < len(l); i++ {
		if l[i-1].ID >= l[i].ID {
			t.Fatalf("list out of order at %d: %s, %s", i, l[i-1].ID, l[i].ID)
		}
	}
	claimed, err := s.Claim(ctx, dlqops.ClaimRequest{Filter: dlqops.Filter{Group: "g1"}, Owner: "o", Now: dlqtest.Base, Lease: time.Minute, Limit: 2000})
	if err != nil || len(claimed) != 2000 || claimed[0].ID != "w00001" || claimed[1999].ID != "w03999" {
		t.Fatalf("claim: %d %v", len(claimed), err)
	}
	// archive every new letter: the walk over the new-status index
	// removes what it changes; claimed letters are skipped
	n, err := s.SetStatus(ctx, dlqops.Filter{Statuses: []dlqops.Status{dlqops.StatusNew}}, dlqops.StatusArchived)
	if err != nil || n != total-2000 {
		t.Fatalf("archive new: %d %v want %d", n, err, total-2000)
	}
	n, err = s.SetStatus(ctx, dlqops.Filter{Group: "g0", Statuses: []dlqops.Status{dlqops.StatusArchived}}, dlqops.StatusNew)
	if err != nil || n != total/2 {
		t.Fatalf("unarchive g0: %d %v want %d", n, err, total/2)
	}
	groups, err := s.Groups(ctx, dlqops.GroupQuery{Filter: dlqops.Filter{Statuses: []dlqops.Status{dlqops.StatusNew, dlqops.StatusArchived}}})
	if err != nil || len(groups) != 2 {
		t.Fatalf("groups: %+v %v", groups, err)
	}
	// across script steps the scanning path folds to what the counters say
	all := []dlqops.Status{dlqops.StatusNew, dlqops.StatusReplayed, dlqops.StatusArchived}
	for _, by := range []dlqops.GroupBy{dlqops.GroupByFingerprint, dlqops.GroupByTopic} {
		window := dlqtest.Base.Add(250 * time.Second)
		indexed, err1 := s.Groups(ctx, dlqops.GroupQuery{By: by, WindowStart: window})
		scanned, err2 := s.Groups(ctx, dlqops.GroupQuery{By: by, WindowStart: window, Filter: dlqops.Filter{Statuses: all}})
		if err1 != nil || err2 != nil || fmt.Sprintf("%+v", indexed) != fmt.Sprintf("%+v", scanned) {
			t.Errorf("by %s:\n indexed %+v %v\n scanned %+v %v", by, indexed, err1, scanned, err2)
		}
	}
	for _, g := range groups {
		want := dlqops.Group{Key: "g0", New: total / 2}
		if g.Key == "g1" {
			want = dlqops.Group{Key: "g1", New: 2000, Archived: total/2 - 2000}
		}
		if g.Count != total/2 || g.New != want.New || g.Archived != want.Archived {
			t.Errorf("group %s: %+v", g.Key, g)
		}
	}
}

// TestSubMicrosecondBounds: times are stored in whole microseconds; a
// bound between two microseconds falls between their letters, as with
// dlqops.MemStore.
func TestSubMicrosecondBounds(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, newPrefix(t))
	a := dlqtest.Letter("a", "g", "t", "h", 0)
	b := dlqtest.Letter("b", "g", "t", "h", time.Microsecond)
	if _, err := s.Add(ctx, a, b); err != nil {
		t.Fatal(err)
	}
	mid := dlqtest.Base.Add(500 * time.Nanosecond)
	for _, tt := range []struct {
		name string
		f    dlqops.Filter
		want []string
	}{
		{"since", dlqops.Filter{Since: mid}, []string{"b"}},
		{"until", dlqops.Filter{Until: mid}, []string{"a"}},
		{"ids since", dlqops.Filter{IDs: []string{"a", "b"}, Since: mid}, []string{"b"}},
		{"ids until", dlqops.Filter{IDs: []string{"a", "b"}, Until: mid}, []string{"a"}},
	} {
		l, err := s.List(ctx, tt.f)
		if err != nil || !slices.Equal(dlqtest.IDs(l), tt.want) {
			t.Errorf("%s: got %v %v want %v", tt.name, dlqtest.IDs(l), err, tt.want)
		}
	}
	for _, f := range []dlqops.Filter{{}, {IDs: []string{"a", "b"}}} {
		got, err := s.Claim(ctx, dlqops.ClaimRequest{Filter: f, After: &dlqops.Cursor{At: mid, ID: "zzz"}, Owner: "o", Now: dlqtest.Base, Lease: time.Minute, Limit: 5})
		if err != nil || !slices.Equal(dlqtest.IDs(got), []string{"b"}) {
			t.Errorf("claim after %v (%+v): got %v %v want [b]", mid, f, dlqtest.IDs(got), err)
		}
		if len(got) == 1 {
			if err := s.Release(ctx, "b", "o", ""); err != nil {
				t.Fatal(err)
			}
		}
	}
	groups, err := s.Groups(ctx, dlqops.GroupQuery{WindowStart: mid})
	if err != nil || len(groups) != 1 || groups[0].InWindow != 1 {
		t.Errorf("groups window: %+v %v", groups, err)
	}
	if n, err := s.Prune(ctx, dlqops.Retention{MaxAge: time.Hour}, mid.Add(time.Hour)); err != nil || n != 1 {
		t.Errorf("prune: %d %v want 1", n, err)
	}
}

// TestFinishIsRepeatable: a MarkReplayed or Release sent again (go-redis
// retries a command whose reply was lost) succeeds again; a different
// replay or another owner still gets ErrClaimLost.
func TestFinishIsRepeatable(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, newPrefix(t))
	if _, err := s.Add(ctx, dlqtest.Letter("1", "g", "t", "h", 0), dlqtest.Letter("2", "g", "t", "h", time.Second)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Claim(ctx, dlqops.ClaimRequest{Owner: "o", Now: dlqtest.Base, Lease: time.Minute, Limit: 2}); err != nil || len(got) != 2 {
		t.Fatalf("claim: %v %v", dlqtest.IDs(got), err)
	}
	for range 2 {
		if err := s.MarkReplayed(ctx, "1", "o", "replay-1", dlqtest.Base); err != nil {
			t.Fatalf("mark: %v", err)
		}
		if err := s.Release(ctx, "2", "o", "held: max replays"); err != nil {
			t.Fatalf("release: %v", err)
		}
	}
	if err := s.MarkReplayed(ctx, "1", "o", "replay-2", dlqtest.Base); !errors.Is(err, dlqops.ErrClaimLost) {
		t.Errorf("another replay of a finished claim: got %v want ErrClaimLost", err)
	}
	if err := s.Release(ctx, "2", "o", "another reason"); !errors.Is(err, dlqops.ErrClaimLost) {
		t.Errorf("another release of a finished claim: got %v want ErrClaimLost", err)
	}
	if err := s.MarkReplayed(ctx, "nope", "o", "r", dlqtest.Base); !errors.Is(err, dlqops.ErrNotFound) {
		t.Errorf("unknown id: got %v want ErrNotFound", err)
	}
	groups, err := s.Groups(ctx, dlqops.GroupQuery{})
	if err != nil || len(groups) != 1 || groups[0].Replayed != 1 || groups[0].New != 1 {
		t.Errorf("counters after repeats: %+v %v", groups, err)
	}
}
