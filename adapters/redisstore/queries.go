package redisstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
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
// returns the number of matches.
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

// groupDims maps a grouping to its index dimension.
func groupDim(by dlqops.GroupBy) string {
	switch by {
	case dlqops.GroupByTopic:
		return "t"
	case dlqops.GroupByHandler:
		return "h"
	}
	return "f"
}

// Groups implements dlqops.Store. Without a filter (or with one that only
// names groups of the same grouping) it reads the per-group indexes and
// counters in one script, O(groups × log n); any other filter walks the
// smallest matching index and folds the letters, O(matching letters).
func (s *Store) Groups(ctx context.Context, q dlqops.GroupQuery) ([]dlqops.Group, error) {
	by, err := dlqops.ParseGroupBy(string(q.By))
	if err != nil {
		return nil, err
	}
	f := q.Filter
	f.Limit = 0
	if err := f.Validate(); err != nil {
		return nil, err
	}
	var out []dlqops.Group
	if keys, ok := indexedGroups(f, by); ok {
		out, err = s.groupsIndexed(ctx, by, keys, q.WindowStart)
	} else {
		out, err = s.groupsScanned(ctx, by, f, q.WindowStart)
	}
	if err != nil {
		return nil, storeErr("groups", err)
	}
	dlqops.SortGroups(out)
	return out, nil
}

// indexedGroups reports whether the per-group counters answer f, and which
// groups to read (none: all).
func indexedGroups(f dlqops.Filter, by dlqops.GroupBy) ([]string, bool) {
	if len(f.IDs) > 0 || f.DLQTopic != "" || len(f.Statuses) > 0 || !f.Since.IsZero() || !f.Until.IsZero() {
		return nil, false
	}
	sel := map[dlqops.GroupBy]string{dlqops.GroupByFingerprint: f.Group, dlqops.GroupByTopic: f.Topic, dlqops.GroupByHandler: f.Handler}
	for b, v := range sel {
		if b != by && v != "" {
			return nil, false
		}
	}
	if v := sel[by]; v != "" {
		return []string{v}, true
	}
	return nil, true
}

func (s *Store) groupsIndexed(ctx context.Context, by dlqops.GroupBy, keys []string, window time.Time) ([]dlqops.Group, error) {
	win := ""
	if !window.IsZero() {
		win = strconv.FormatInt(ceilMicros(window), 10)
	}
	args := []any{s.kp, groupDim(by), win}
	for _, k := range keys {
		args = append(args, k)
	}
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	v, err := groupsScript.Run(ctx, s.client, nil, args...).Slice()
	if err != nil {
		return nil, err
	}
	out := make([]dlqops.Group, 0, len(v))
	for _, it := range v {
		row, ok := it.([]any)
		if !ok || len(row) != 8 {
			return nil, fmt.Errorf("unexpected group reply %v", it)
		}
		key, _ := row[0].(string)
		counters, _ := row[1].([]any)
		g := dlqops.Group{Key: key, By: by, Topics: []string{}, Handlers: []string{}}
		for i := 0; i+1 < len(counters); i += 2 {
			name, _ := counters[i].(string)
			val, _ := counters[i+1].(string)
			n, err := strconv.Atoi(val)
			if err != nil {
				return nil, fmt.Errorf("group %q counter %s: %w", key, name, err)
			}
			switch {
			case name == "c":
				g.Count = n
			case name == "s:new":
				g.New = n
			case name == "s:replayed":
				g.Replayed = n
			case name == "s:archived":
				g.Archived = n
			case strings.HasPrefix(name, "t:"):
				g.Topics = append(g.Topics, name[2:])
			case strings.HasPrefix(name, "h:"):
				g.Handlers = append(g.Handlers, name[2:])
			}
		}
		slices.Sort(g.Topics)
		slices.Sort(g.Handlers)
		var perr error
		score := func(x any) time.Time {
			str, _ := x.(string)
			if str == "" || perr != nil {
				return time.Time{}
			}
			t, err := parseScore(str)
			perr = err
			return t
		}
		g.FirstSeen, g.LastSeen, g.OldestNew = score(row[2]), score(row[3]), score(row[4])
		if perr != nil {
			return nil, perr
		}
		inWin, _ := row[5].(int64)
		g.InWindow = int(inWin)
		g.SampleError, _ = row[6].(string)
		g.ErrorClass, _ = row[7].(string)
		out = append(out, g)
	}
	return out, nil
}

func (s *Store) groupsScanned(ctx context.Context, by dlqops.GroupBy, f dlqops.Filter, window time.Time) ([]dlqops.Group, error) {
	type acc struct {
		g                dlqops.Group
		topics, handlers map[string]bool
	}
	groups := map[string]*acc{}
	win := ""
	if !window.IsZero() {
		win = strconv.FormatInt(ceilMicros(window), 10)
	}
	// each script step folds up to scanBudget letters into partial groups;
	// steps come in replay order, so a later step's last letter is newer
	_, err := s.walk(ctx, scan{mode: "agg", f: f, extra: [3]any{groupDim(by), win, ""}}, func(item any) error {
		row, ok := item.([]any)
		if !ok || len(row) != 13 {
			return fmt.Errorf("unexpected scan reply %v", item)
		}
		key, _ := row[0].(string)
		var n [5]int
		for i := range n {
			v, _ := row[1+i].(int64)
			n[i] = int(v)
		}
		var ts [3]time.Time
		for i := range ts {
			str, _ := row[6+i].(string)
			if str == "" {
				continue
			}
			at, err := strconv.ParseInt(str, 10, 64)
			if err != nil {
				return fmt.Errorf("group %q: failed at: %w", key, err)
			}
			ts[i] = fromMicros(at)
		}
		a := groups[key]
		if a == nil {
			a = &acc{g: dlqops.Group{Key: key, By: by, FirstSeen: ts[0]}, topics: map[string]bool{}, handlers: map[string]bool{}}
			groups[key] = a
		}
		g := &a.g
		g.Count += n[0]
		g.New += n[1]
		g.Replayed += n[2]
		g.Archived += n[3]
		g.InWindow += n[4]
		if g.OldestNew.IsZero() {
			g.OldestNew = ts[2]
		}
		g.LastSeen = ts[1]
		g.SampleError, _ = row[9].(string)
		g.ErrorClass, _ = row[10].(string)
		for i, set := range []map[string]bool{a.topics, a.handlers} {
			list, _ := row[11+i].([]any)
			for _, x := range list {
				v, _ := x.(string)
				set[v] = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]dlqops.Group, 0, len(groups))
	for _, a := range groups {
		a.g.Topics = slices.Sorted(maps.Keys(a.topics))
		a.g.Handlers = slices.Sorted(maps.Keys(a.handlers))
		out = append(out, a.g)
	}
	return out, nil
}

// Claim implements dlqops.Store. The script walks the smallest matching index
// in replay order and, in the same atomic step, takes each letter that has
// no claim or whose lease ended, setting owner and lease end.
func (s *Store) Claim(ctx context.Context, r dlqops.ClaimRequest) ([]dlqops.Record, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	f := r.Filter
	if len(f.Statuses) == 0 {
		f.Statuses = []dlqops.Status{dlqops.StatusNew}
	}
	f.Limit = 0
	out := []dlqops.Record{}
	sc := scan{mode: "claim", f: f, after: r.After, want: r.Limit,
		extra: [3]any{r.Owner, microString(r.Now), microString(r.Now.Add(r.Lease))}}
	_, err := s.walk(ctx, sc, func(item any) error {
		dl, err := decodePairs(item)
		if err != nil {
			return err
		}
		out = append(out, dl)
		return nil
	})
	if err != nil {
		// letters claimed before the error stay claimed until their lease
		// ends; nobody else takes them meanwhile
		return nil, storeErr("claim", err)
	}
	return out, nil
}

func (s *Store) finish(ctx context.Context, op string, args ...any) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	res, err := finishScript.Run(ctx, s.client, nil, append([]any{s.kp, op}, args...)...).Text()
	if err != nil {
		return storeErr(op, err)
	}
	id, owner := args[0], args[1]
	switch res {
	case "ok":
		return nil
	case "notfound":
		return fmt.Errorf("%w: %q", dlqops.ErrNotFound, id)
	case "lost":
		return fmt.Errorf("%w: %q is not held by %q", dlqops.ErrClaimLost, id, owner)
	}
	return storeErr(op, fmt.Errorf("unexpected reply %q", res))
}

// MarkReplayed implements dlqops.Store.
func (s *Store) MarkReplayed(ctx context.Context, id, owner, replayUUID string, at time.Time) error {
	return s.finish(ctx, "mark", id, owner, replayUUID, microString(at))
}

// Release implements dlqops.Store.
func (s *Store) Release(ctx context.Context, id, owner, reason string) error {
	return s.finish(ctx, "release", id, owner, reason)
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
