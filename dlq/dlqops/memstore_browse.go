package dlqops

import (
	"context"
	"fmt"
	"slices"
)

var _ Browser = (*MemStore)(nil)

// Page implements Browser: it sorts the matching letters, O(n log n).
func (s *MemStore) Page(ctx context.Context, q PageQuery) (LetterPage, error) {
	if err := q.Validate(); err != nil {
		return LetterPage{}, err
	}
	if err := ctx.Err(); err != nil {
		return LetterPage{}, fmt.Errorf("%w: %w", ErrStore, err)
	}
	size := q.Size()
	f := q.Filter
	f.Limit = 0
	s.mu.Lock()
	defer s.mu.Unlock()
	var all []*memEntry
	for _, e := range s.letters {
		if q.Match(&e.dl) {
			all = append(all, e)
		}
	}
	slices.SortFunc(all, func(a, b *memEntry) int {
		if letterLess(a.dl, b.dl) {
			return 1
		}
		return -1
	})
	page := LetterPage{Letters: []Record{}}
	for i, e := range all {
		if i == size {
			last := page.Letters[len(page.Letters)-1]
			page.Next = &Cursor{At: last.FailedAt, ID: last.ID}
			break
		}
		page.Letters = append(page.Letters, cloneLetter(e.dl))
	}
	return page, nil
}

// Hourly implements Browser.
func (s *MemStore) Hourly(ctx context.Context, q HourlyQuery) (map[string][]int, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStore, err)
	}
	by, _ := ParseGroupBy(string(q.By))
	out := make(map[string][]int, len(q.Keys))
	for _, k := range q.Keys {
		out[k] = make([]int, q.Hours)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.letters {
		counts, ok := out[groupKey(&e.dl, by)]
		if !ok {
			continue
		}
		if h := q.Hour(e.dl.FailedAt); h >= 0 {
			counts[h]++
		}
	}
	return out, nil
}

// AddEvent implements Browser; a letter keeps its newest MaxEvents events,
// and Prune drops the events of the letters it deletes.
func (s *MemStore) AddEvent(ctx context.Context, ev Event) error {
	if err := ev.Validate(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrStore, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.events == nil {
		s.events = map[string][]Event{}
	}
	evs := append(s.events[ev.LetterID], BoundEvent(ev))
	if len(evs) > MaxEvents {
		evs = slices.Clone(evs[len(evs)-MaxEvents:])
	}
	s.events[ev.LetterID] = evs
	return nil
}

// Events implements Browser.
func (s *MemStore) Events(ctx context.Context, letterID string, limit int) ([]Event, error) {
	if limit <= 0 || limit > MaxEvents {
		return nil, fmt.Errorf("%w: event limit %d not in 1..%d", ErrInvalidQuery, limit, MaxEvents)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStore, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	evs := s.events[letterID]
	if len(evs) > limit {
		evs = evs[len(evs)-limit:]
	}
	return append([]Event{}, evs...), nil
}
