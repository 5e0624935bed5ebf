package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/redis/go-redis/v9"
)

var _ dlqops.Browser = (*Store)(nil)

// Page walk bounds.
const (
	// pageStep is how many index entries one call of the page script
	// examines at most (it blocks the server while it runs).
	pageStep = 1000
	// pageBudget bounds the index entries one Page call walks; a search
	// that finds fewer matches in them returns a partial page whose Next
	// continues the walk.
	pageBudget = 5000
)

// pageScript walks an index backwards by score from ARGV[3] down to
// ARGV[4], from offset ARGV[7], examining at most ARGV[8] entries, and
// returns the IDs whose letter passes the filter (status, group, topic,
// handler, DLQ topic, class, and the lowercased text in the error), at
// most ARGV[9]; then how many entries it examined, how many the range gave,
// and the last examined entry's ID and score. Entries at the cursor's
// score (ARGV[5]) with an ID at or after the cursor's (ARGV[6]) are
// skipped. Page re-checks every letter it returns with PageQuery.Match.
var pageScript = redis.NewScript(`
local P, key, hi, lo, bs, bid = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local offset, step, want = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local fg, ft, fh, fd, fst, fcl, ftx = ARGV[10], ARGV[11], ARGV[12], ARGV[13], ARGV[14], ARGV[15], ARGV[16]
local e = redis.call('ZRANGE', key, hi, lo, 'BYSCORE', 'REV', 'LIMIT', offset, step, 'WITHSCORES')
local out, examined, lastID, lastScore = {}, 0, '', ''
local bsn = tonumber(bs)
for i = 1, #e, 2 do
  local id, sc = e[i], e[i + 1]
  examined = examined + 1
  lastID, lastScore = id, sc
  if not (bsn and tonumber(sc) == bsn and id >= bid) then
    local v = redis.call('HMGET', P .. 'r:' .. id, 'st', 'fp', 'topic', 'handler', 'dlqt', 'ecl', 'err')
    if v[1] and (fst == '' or string.find(',' .. fst .. ',', ',' .. v[1] .. ',', 1, true))
      and (fg == '' or v[2] == fg) and (ft == '' or v[3] == ft) and (fh == '' or v[4] == fh)
      and (fd == '' or v[5] == fd) and (fcl == '' or v[6] == fcl)
      and (ftx == '' or string.find(string.lower(v[7] or ''), ftx, 1, true)) then
      out[#out + 1] = id
      if #out >= want then break end
    end
  end
end
return {out, examined, #e / 2, lastID, lastScore}`)

// Page implements dlqops.Browser: a script walks the smallest index that
// holds the filter's letters (see Store.List) backwards from the cursor,
// within the filter's time range, filters each entry on the server, and
// the matching letters are fetched whole. One call walks at most 5,000
// entries (in script steps of 1,000, so no step blocks the server long): a
// search matching fewer letters than
// a page among them returns them with Partial set and a Next that
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

// pageRange returns the score range of q, highest first: the cursor or
// Until (exclusive) above, Since below; and the cursor's score and ID.
func pageRange(q dlqops.PageQuery) (hi, lo, bs, bid string) {
	hi, lo = "+inf", "-inf"
	if !q.Filter.Since.IsZero() {
		lo = strconv.FormatInt(ceilMicros(q.Filter.Since), 10)
	}
	var until int64 = math.MaxInt64
	if !q.Filter.Until.IsZero() {
		until = ceilMicros(q.Filter.Until)
		hi = "(" + strconv.FormatInt(until, 10)
	}
	if b := q.Before; b != nil {
		if at := ceilMicros(b.At); at < until {
			hi = strconv.FormatInt(at, 10)
			bs, bid = hi, b.ID
			if b.At.Nanosecond()%1000 != 0 {
				bs, bid = "", "" // between two microseconds: every entry at hi is before it
				hi = "(" + hi
			}
		}
	}
	return hi, lo, bs, bid
}

func (s *Store) page(ctx context.Context, q dlqops.PageQuery) (dlqops.LetterPage, error) {
	size := q.Size()
	f := q.Filter
	f.Limit = 0
	key, err := s.driver(ctx, f)
	if err != nil {
		return dlqops.LetterPage{}, err
	}
	hi, lo, bs, bid := pageRange(q)
	statuses := make([]string, len(f.Statuses))
	for i, st := range f.Statuses {
		statuses[i] = string(st)
	}
	page := dlqops.LetterPage{Letters: []dlqops.Record{}}
	var (
		matched          []string
		lastID, lastAt   string
		offset           int
		exhausted, ended bool
	)
	for offset < s.pageBudget && !ended {
		step := min(pageStep, s.pageBudget-offset)
		rctx, cancel := s.deadline(ctx)
		v, err := pageScript.Run(rctx, s.client, nil, s.kp, key, hi, lo, bs, bid, offset, step, size+1-len(matched),
			f.Group, f.Topic, f.Handler, f.DLQTopic, strings.Join(statuses, ","), q.Class, asciiLower(q.Text)).Slice()
		cancel()
		if err != nil {
			return page, err
		}
		if len(v) != 5 {
			return page, fmt.Errorf("short page reply (%d items)", len(v))
		}
		ids, _ := v[0].([]any)
		examined, _ := v[1].(int64)
		read, _ := v[2].(int64)
		lastID, _ = v[3].(string)
		lastAt, _ = v[4].(string)
		for _, id := range ids {
			if sid, ok := id.(string); ok {
				matched = append(matched, sid)
			}
		}
		offset += int(examined)
		switch {
		case len(matched) > size:
			ended = true
		case int(read) < step:
			ended, exhausted = true, true
		}
	}
	letters, err := s.getAll(ctx, matched[:min(len(matched), size)])
	if err != nil {
		return page, err
	}
	for i := range letters {
		if q.Match(&letters[i]) {
			page.Letters = append(page.Letters, letters[i])
		}
	}
	switch {
	case len(matched) > size && len(page.Letters) > 0:
		l := page.Letters[len(page.Letters)-1]
		page.Next = &dlqops.Cursor{At: l.FailedAt, ID: l.ID}
	case !exhausted && lastID != "":
		// the budget ran out before the page was full
		at, err := parseScore(lastAt)
		if err != nil {
			return page, err
		}
		page.Next = &dlqops.Cursor{At: at, ID: lastID}
		page.Partial = true
	}
	return page, nil
}

// asciiLower lowercases ASCII letters only, as Lua's string.lower does on
// the server and dlqops.PageQuery.Match does.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
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
