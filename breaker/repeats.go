package breaker

import "time"

// maxRepeats bounds each half of a repeats set. Past it a failure is
// counted without being remembered (as before this set existed), so memory
// stays bounded however many distinct messages fail.
const maxRepeats = 4096

// repeats remembers which messages already had a failure counted, so that
// one message's repeated failures (the dlq retrying a poison message in
// process, or its redeliveries) count once toward tripping: the breaker
// opens on failures of distinct messages, i.e. on the downstream, not on
// one bad message. A message is remembered for one to two spans (the
// rolling window): two maps, the older dropped at every span. The zero
// value is ready; the owner guards it.
type repeats struct {
	cur, prev map[string]struct{}
	rotated   time.Time
	span      time.Duration
}

func newRepeats(span time.Duration) repeats { return repeats{span: span} }

// again reports whether id already had a failure counted within the last
// span or two; when not, it remembers id (while there is room) and
// returns false. An empty id is never a repeat.
func (r *repeats) again(id string, now time.Time) bool {
	if id == "" {
		return false
	}
	if r.cur == nil {
		r.cur, r.rotated = make(map[string]struct{}), now
	}
	if d := now.Sub(r.rotated); d >= r.span {
		if d >= 2*r.span {
			clear(r.cur)
			r.prev = nil
		} else {
			r.prev, r.cur = r.cur, r.prev
			if r.cur == nil {
				r.cur = make(map[string]struct{})
			}
			clear(r.cur)
		}
		r.rotated = now
	}
	if _, ok := r.cur[id]; ok {
		return true
	}
	if _, ok := r.prev[id]; ok {
		return true
	}
	if len(r.cur) < maxRepeats {
		r.cur[id] = struct{}{}
	}
	return false
}

// reset forgets every message (a new state: the breaker's counts start
// afresh, so do its repeats).
func (r *repeats) reset() {
	clear(r.cur)
	clear(r.prev)
}
