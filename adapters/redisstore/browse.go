package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/redis/go-redis/v9"
)

var _ dlqops.Browser = (*Store)(nil)

// Page walk bounds.
const (
	// pageChunk is how many index entries one step of a page's walk reads.
	pageChunk = 500
	// pageBudget bounds the index entries one Page call walks; a search
	// that finds fewer matches in them returns a partial page whose Next
	// continues the walk.
	pageBudget = 20000
)

// filterFields are the fields Page reads to filter before it fetches a
// whole letter.
var filterFields = []string{fID, fFailedAt, fStatus, fFP, fTopic, fHandler, fDLQTopic, fClass, fError}

// Page implements dlqops.Browser: it walks the smallest index that holds
// the filter's letters (see Store.List) backwards from the cursor, reads
// each entry's filter fields, and fetches the matching letters whole. It
// walks at most 20,000 entries a call: a search matching fewer letters
// than a page among them returns them with Partial set and a Next that
// continues the walk.
func (s *Store) Page(ctx context.Context, q dlqops.PageQuery) (dlqops.LetterPage, error) {
	if err := q.Validate(); err != nil {
		return dlqops.LetterPage{}, err
	}
	p, err := s.page(ctx, q)
	if err != nil {
		return p, storeErr("page", err)
	}
	return p, nil
}

func (s *Store) page(ctx context.Context, q dlqops.PageQuery) (dlqops.LetterPage, error) {
	size := q.Size()
	f := q.Filter
	f.Limit = 0
	key, err := s.driver(ctx, f)
	if err != nil {
		return dlqops.LetterPage{}, err
	}
	// go-redis swaps Start and Stop for a reverse range by score
	hi := "+inf"
	if q.Before != nil {
		hi = strconv.FormatInt(ceilMicros(q.Before.At), 10)
	}
	page := dlqops.LetterPage{Letters: []dlqops.Record{}}
	var matched []string
	var last redis.Z
	for offset := 0; offset < pageBudget; {
		rctx, cancel := s.deadline(ctx)
		zs, err := s.client.ZRangeArgsWithScores(rctx, redis.ZRangeArgs{Key: key, Start: "-inf", Stop: hi,
			ByScore: true, Rev: true, Offset: int64(offset), Count: pageChunk}).Result()
		cancel()
		if err != nil {
			return page, err
		}
		if len(zs) == 0 {
			break
		}
		offset += len(zs)
		last = zs[len(zs)-1]
		ids, err := s.filterIDs(ctx, q, zs)
		if err != nil {
			return page, err
		}
		matched = append(matched, ids...)
		if len(matched) > size {
			break
		}
		if len(zs) < pageChunk {
			last = redis.Z{}
			break
		}
	}
	letters, err := s.getAll(ctx, matched[:min(len(matched), size)])
	if err != nil {
		return page, err
	}
	page.Letters = letters
	switch {
	case len(matched) > size && len(letters) > 0:
		l := letters[len(letters)-1]
		page.Next = &dlqops.Cursor{At: l.FailedAt, ID: l.ID}
	case last.Member != nil:
		// the budget ran out before the page was full
		id, _ := last.Member.(string)
		page.Next = &dlqops.Cursor{At: fromMicros(int64(last.Score)), ID: id}
		page.Partial = true
	}
	return page, nil
}

// filterIDs reads the filter fields of the entries zs and returns the IDs
// of those matching q, in order.
func (s *Store) filterIDs(ctx context.Context, q dlqops.PageQuery, zs []redis.Z) ([]string, error) {
	rctx, cancel := s.deadline(ctx)
	defer cancel()
	pipe := s.client.Pipeline()
	cmds := make([]*redis.SliceCmd, len(zs))
	for i, z := range zs {
		id, _ := z.Member.(string)
		cmds[i] = pipe.HMGet(rctx, s.recordKey(id), filterFields...)
	}
	if _, err := pipe.Exec(rctx); err != nil && err != redis.Nil {
		return nil, err
	}
	var out []string
	for _, c := range cmds {
		v := c.Val()
		str := func(i int) string { x, _ := v[i].(string); return x }
		if len(v) != len(filterFields) || str(0) == "" {
			continue // deleted meanwhile
		}
		at, err := strconv.ParseInt(str(1), 10, 64)
		if err != nil {
			continue
		}
		dl := dlqops.Record{ID: str(0), FailedAt: fromMicros(at), Status: dlqops.Status(str(2)), Fingerprint: str(3),
			OriginalTopic: str(4), Handler: str(5), DLQTopic: str(6), ErrorClass: str(7), Error: str(8)}
		if q.Match(&dl) {
			out = append(out, dl.ID)
		}
	}
	return out, nil
}

// getAll fetches letters whole, in order, skipping any deleted meanwhile.
func (s *Store) getAll(ctx context.Context, ids []string) ([]dlqops.Record, error) {
	out := []dlqops.Record{}
	if len(ids) == 0 {
		return out, nil
	}
	rctx, cancel := s.deadline(ctx)
	defer cancel()
	pipe := s.client.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HGetAll(rctx, s.recordKey(id))
	}
	if _, err := pipe.Exec(rctx); err != nil {
		return nil, err
	}
	for _, c := range cmds {
		if len(c.Val()) == 0 {
			continue
		}
		dl, err := decode(c.Val())
		if err != nil {
			return nil, err
		}
		out = append(out, dl)
	}
	return out, nil
}

// Hourly implements dlqops.Browser with one ZCOUNT per key and hour on the
// group indexes, in one pipeline: O(keys × hours × log n).
func (s *Store) Hourly(ctx context.Context, q dlqops.HourlyQuery) (map[string][]int, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	by, _ := dlqops.ParseGroupBy(string(q.By))
	d := map[dlqops.GroupBy]string{dlqops.GroupByFingerprint: "f", dlqops.GroupByTopic: "t", dlqops.GroupByHandler: "h"}[by]
	out := make(map[string][]int, len(q.Keys))
	if len(q.Keys) == 0 {
		return out, nil
	}
	rctx, cancel := s.deadline(ctx)
	defer cancel()
	pipe := s.client.Pipeline()
	cmds := make(map[string][]*redis.IntCmd, len(q.Keys))
	start := q.Start()
	for _, k := range q.Keys {
		cs := make([]*redis.IntCmd, q.Hours)
		for h := range q.Hours {
			lo := micros(start.Add(time.Duration(h) * time.Hour))
			hi := micros(start.Add(time.Duration(h+1) * time.Hour))
			cs[h] = pipe.ZCount(rctx, s.kp+"i:"+d+":"+k, strconv.FormatInt(lo, 10), "("+strconv.FormatInt(hi, 10))
		}
		cmds[k] = cs
	}
	if _, err := pipe.Exec(rctx); err != nil {
		return nil, storeErr("hourly", err)
	}
	for k, cs := range cmds {
		counts := make([]int, len(cs))
		for h, c := range cs {
			counts[h] = int(min(c.Val(), math.MaxInt32))
		}
		out[k] = counts
	}
	return out, nil
}

// eventsKey is the list of a letter's events (JSON), "P e:<id>".
func (s *Store) eventsKey(id string) string { return s.kp + "e:" + id }

// AddEvent implements dlqops.Browser: an RPUSH and LTRIM to the newest
// dlqops.MaxEvents, when the letter is stored (Prune deletes a letter's
// events with it).
func (s *Store) AddEvent(ctx context.Context, ev dlqops.Event) error {
	if err := ev.Validate(); err != nil {
		return err
	}
	b, err := json.Marshal(dlqops.BoundEvent(ev))
	if err != nil {
		return fmt.Errorf("%w: event: %w", dlqops.ErrInvalidQuery, err)
	}
	rctx, cancel := s.deadline(ctx)
	defer cancel()
	if err := addEventScript.Run(rctx, s.client, []string{s.recordKey(ev.LetterID), s.eventsKey(ev.LetterID)},
		b, dlqops.MaxEvents).Err(); err != nil && err != redis.Nil {
		return storeErr("add event", err)
	}
	return nil
}

var addEventScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1)
return 1`)

// Events implements dlqops.Browser.
func (s *Store) Events(ctx context.Context, letterID string, limit int) ([]dlqops.Event, error) {
	if limit <= 0 || limit > dlqops.MaxEvents {
		return nil, fmt.Errorf("%w: event limit %d not in 1..%d", dlqops.ErrInvalidQuery, limit, dlqops.MaxEvents)
	}
	rctx, cancel := s.deadline(ctx)
	defer cancel()
	raw, err := s.client.LRange(rctx, s.eventsKey(letterID), int64(-limit), -1).Result()
	if err != nil {
		return nil, storeErr("events", err)
	}
	out := make([]dlqops.Event, 0, len(raw))
	for _, r := range raw {
		var ev dlqops.Event
		if err := json.Unmarshal([]byte(r), &ev); err != nil {
			return nil, storeErr("events", err)
		}
		out = append(out, ev)
	}
	return out, nil
}
