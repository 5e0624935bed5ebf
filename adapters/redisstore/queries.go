package redisstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/redis/go-redis/v9"
)

// Sizes of the steps a query takes: letters returned by one script call,
// index entries one call scans at most, IDs one call checks.
const (
	pageLetters = 500
	scanBudget  = 5000
	idChunk     = 500
	pruneChunk  = 1000
)

// Add implements dlqops.Store: one script per WithBatchSize letters adds the
// letters whose ID is not stored yet, with their index entries.
func (s *Store) Add(ctx context.Context, letters ...dlqops.Record) (int, error) {
	for _, dl := range letters {
		if dl.ID == "" {
			return 0, fmt.Errorf("%w: dead letter without id", dlqops.ErrInvalidQuery)
		}
		if dl.Status != "" && !dl.Status.Valid() {
			return 0, fmt.Errorf("%w: dead letter %q has unknown status %q", dlqops.ErrInvalidQuery, dl.ID, dl.Status)
		}
	}
	total := 0
	for len(letters) > 0 {
		n := min(len(letters), s.batch)
		args := make([]any, 0, 1+n*48)
		args = append(args, s.kp)
		for _, dl := range letters[:n] {
			args = encode(args, dl)
		}
		rctx, cancel := s.deadline(ctx)
		added, err := addScript.Run(rctx, s.client, nil, args...).Int()
		cancel()
		total += added
		if err != nil {
			return total, storeErr("add", err)
		}
		letters = letters[n:]
	}
	return total, nil
}

func (s *Store) recordKey(id string) string { return s.kp + "r:" + id }

// Get implements dlqops.Store.
func (s *Store) Get(ctx context.Context, id string) (dlqops.Record, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	h, err := s.client.HGetAll(ctx, s.recordKey(id)).Result()
	if err != nil {
		return dlqops.Record{}, storeErr("get", err)
	}
	if len(h) == 0 {
		return dlqops.Record{}, fmt.Errorf("%w: %q", dlqops.ErrNotFound, id)
	}
	dl, err := decode(h)
	if err != nil {
		return dl, storeErr("get", err)
	}
	return dl, nil
}

// scan is one walk of the scan script.
type scan struct {
	mode  string // full, agg, claim or set
	f     dlqops.Filter
	after *dlqops.Cursor
	want  int    // stop after this many matches; 0: all
	extra [3]any // ARGV 16..18 (claim: owner, now, lease end; set: status)
}

// walk runs the scan script until it has sc.want matches or the index is
// exhausted, handing each returned item to each, in replay order. It
// returns the number of matches. Not split: its closures (header,
// perCall, call) share the scan's arguments, and both paths (by ID, by
// index) use all three; apart, each would take the whole scan state.
func (s *Store) walk(ctx context.Context, sc scan, each func(item any) error) (int, error) {
	statuses := make([]string, len(sc.f.Statuses))
	for i, st := range sc.f.Statuses {
		statuses[i] = string(st)
	}
	header := func(src, key, lo, hi, aS, aID string, want, budget int) []any {
		return []any{s.kp, sc.mode, src, key, lo, hi, aS, aID, want, budget,
			sc.f.Group, sc.f.Topic, sc.f.Handler, sc.f.DLQTopic, strings.Join(statuses, ","),
			sc.extra[0], sc.extra[1], sc.extra[2]}
	}
	remaining := func(matched int) int {
		if sc.want == 0 {
			return math.MaxInt32
		}
		return sc.want - matched
	}
	perCall := func(matched int) int {
		r := remaining(matched)
		if sc.mode == "full" || sc.mode == "claim" {
			return min(r, pageLetters)
		}
		if sc.mode == "agg" {
			return min(r, scanBudget)
		}
		return r
	}
	call := func(args []any) (int, bool, string, string, error) {
		rctx, cancel := s.deadline(ctx)
		defer cancel()
		v, err := scanScript.Run(rctx, s.client, nil, args...).Slice()
		if err != nil {
			return 0, false, "", "", err
		}
		if len(v) < 4 {
			return 0, false, "", "", fmt.Errorf("short scan reply (%d items)", len(v))
		}
		lastS, _ := v[0].(string)
		lastID, _ := v[1].(string)
		done, _ := v[2].(int64)
		count, _ := v[3].(int64)
		for _, it := range v[4:] {
			if err := each(it); err != nil {
				return 0, false, "", "", err
			}
		}
		return int(count), done == 1, lastS, lastID, nil
	}

	matched := 0
	if len(sc.f.IDs) > 0 {
		ids, err := s.orderIDs(ctx, sc.f, sc.after)
		if err != nil {
			return 0, err
		}
		for len(ids) > 0 && remaining(matched) > 0 {
			n := min(len(ids), idChunk)
			args := header("l", "", "", "", "", "", perCall(matched), 0)
			for _, id := range ids[:n] {
				args = append(args, id)
			}
			got, _, _, _, err := call(args)
			if err != nil {
				return matched, err
			}
			matched += got // the script stops at want, and so does the loop
			ids = ids[n:]
		}
		return matched, nil
	}

	key, err := s.driver(ctx, sc.f)
	if err != nil {
		return 0, err
	}
	lo, hi := "-inf", "+inf"
	if !sc.f.Since.IsZero() {
		lo = strconv.FormatInt(ceilMicros(sc.f.Since), 10)
	}
	if !sc.f.Until.IsZero() {
		hi = "(" + strconv.FormatInt(ceilMicros(sc.f.Until), 10)
	}
	aS, aID := "", ""
	if sc.after != nil {
		aS, aID = cursorBound(*sc.after)
	}
	for remaining(matched) > 0 {
		got, done, lastS, lastID, err := call(header("z", key, lo, hi, aS, aID, perCall(matched), scanBudget))
		if err != nil {
			return matched, err
		}
		matched += got
		if done {
			break
		}
		aS, aID = lastS, lastID
	}
	return matched, nil
}

// cursorBound returns the position of c in stored (microsecond) terms:
// a letter is after c exactly when its (score, ID) is after the returned
// pair. A cursor between two microseconds is past every letter of the
// earlier one.
func cursorBound(c dlqops.Cursor) (string, string) {
	if c.At.Nanosecond()%1000 != 0 {
		return strconv.FormatInt(ceilMicros(c.At), 10), ""
	}
	return microString(c.At), c.ID
}

// orderIDs returns the distinct stored IDs of f.IDs within f's time range
// and after the cursor, in replay order.
func (s *Store) orderIDs(ctx context.Context, f dlqops.Filter, after *dlqops.Cursor) ([]string, error) {
	ids := slices.Clone(f.IDs)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	pipe := s.client.Pipeline()
	cmds := make([]*redis.FloatCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.ZScore(ctx, s.kp+"all", id)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	type idAt struct {
		id string
		at int64
	}
	var found []idAt
	var since, until, aAt int64 = math.MinInt64, math.MaxInt64, 0
	if !f.Since.IsZero() {
		since = ceilMicros(f.Since)
	}
	if !f.Until.IsZero() {
		until = ceilMicros(f.Until)
	}
	aID := ""
	if after != nil {
		a, id := cursorBound(*after)
		aAt, _ = strconv.ParseInt(a, 10, 64)
		aID = id
	}
	for i, c := range cmds {
		v, err := c.Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return nil, err
		}
		at := int64(v)
		if at < since || at >= until {
			continue
		}
		if after != nil && (at < aAt || at == aAt && ids[i] <= aID) {
			continue
		}
		found = append(found, idAt{ids[i], at})
	}
	slices.SortFunc(found, func(a, b idAt) int {
		if c := cmp.Compare(a.at, b.at); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	out := make([]string, len(found))
	for i, x := range found {
		out[i] = x.id
	}
	return out, nil
}

// driver picks the smallest sorted index that holds every letter f can
// match: a group, topic or handler index (its new-only twin when f selects
// new letters only), a status index, or the index of all letters.
func (s *Store) driver(ctx context.Context, f dlqops.Filter) (string, error) {
	onlyNew := len(f.Statuses) > 0 && !slices.ContainsFunc(f.Statuses, func(st dlqops.Status) bool { return st != dlqops.StatusNew })
	var keys []string
	dim := func(d, v string) {
		if v == "" {
			return
		}
		if onlyNew {
			keys = append(keys, s.kp+"n:"+d+":"+v)
		} else {
			keys = append(keys, s.kp+"i:"+d+":"+v)
		}
	}
	dim("f", f.Group)
	dim("t", f.Topic)
	dim("h", f.Handler)
	if st := slices.Compact(slices.Sorted(slices.Values(f.Statuses))); len(st) == 1 {
		keys = append(keys, s.kp+"s:"+string(st[0]))
	}
	switch len(keys) {
	case 0:
		return s.kp + "all", nil
	case 1:
		return keys[0], nil
	}
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	pipe := s.client.Pipeline()
	cards := make([]*redis.IntCmd, len(keys))
	for i, k := range keys {
		cards[i] = pipe.ZCard(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return "", err
	}
	best := 0
	for i, c := range cards {
		if c.Val() < cards[best].Val() {
			best = i
		}
	}
	return keys[best], nil
}

// List implements dlqops.Store.
func (s *Store) List(ctx context.Context, f dlqops.Filter) ([]dlqops.Record, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	out := []dlqops.Record{}
	_, err := s.walk(ctx, scan{mode: "full", f: f, want: f.Limit}, func(item any) error {
		dl, err := decodePairs(item)
		if err != nil {
			return err
		}
		out = append(out, dl)
		return nil
	})
	if err != nil {
		return nil, storeErr("list", err)
	}
	return out, nil
}

// SetStatus implements dlqops.Store. Each script step changes the letters of
// one index page atomically; letters under a claim (whatever its lease)
// are skipped.
func (s *Store) SetStatus(ctx context.Context, f dlqops.Filter, st dlqops.Status) (int, error) {
	if !st.Valid() {
		return 0, fmt.Errorf("%w: unknown status %q", dlqops.ErrInvalidQuery, st)
	}
	if err := f.Validate(); err != nil {
		return 0, err
	}
	n, err := s.walk(ctx, scan{mode: "set", f: f, want: f.Limit, extra: [3]any{string(st), "", ""}}, func(any) error { return nil })
	if err != nil {
		return n, storeErr("set status", err)
	}
	return n, nil
}

// Prune implements dlqops.Store: oldest first, pruneChunk letters per script.
func (s *Store) Prune(ctx context.Context, r dlqops.Retention, now time.Time) (int, error) {
	if r.MaxAge < 0 || r.MaxCount < 0 {
		return 0, fmt.Errorf("%w: negative retention", dlqops.ErrInvalidQuery)
	}
	n := 0
	step := func(op, bound string) error {
		for {
			rctx, cancel := s.deadline(ctx)
			k, err := pruneScript.Run(rctx, s.client, nil, s.kp, op, bound, pruneChunk).Int()
			cancel()
			n += k
			if err != nil {
				return storeErr("prune by "+op, err)
			}
			if k < pruneChunk {
				return nil
			}
		}
	}
	if r.MaxAge > 0 {
		if err := step("age", strconv.FormatInt(ceilMicros(now.Add(-r.MaxAge)), 10)); err != nil {
			return n, err
		}
	}
	if r.MaxCount > 0 {
		if err := step("count", strconv.Itoa(r.MaxCount)); err != nil {
			return n, err
		}
	}
	return n, nil
}
