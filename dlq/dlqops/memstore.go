package dlqops

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"
)

// MemStore is the embedded in-memory Store, the default when no database is
// configured. It holds letters in one map guarded by a mutex; claims are a
// status plus lease on the entry, so two replayers in one process never
// send a letter twice. Contents are lost with the process. A MemStore is
// safe for concurrent use; the zero value is not usable, use NewMemStore.
type MemStore struct {
	mu      sync.Mutex
	letters map[string]*memEntry // guarded by mu
	events  map[string][]Event   // guarded by mu; by letter ID (Browser)
}

type memEntry struct {
	dl         Record
	claimOwner string
	claimUntil time.Time
}

// NewMemStore returns an empty in-memory store.
func NewMemStore() *MemStore { return &MemStore{letters: map[string]*memEntry{}} }

var _ Store = (*MemStore)(nil)

// Len returns how many letters are stored.
func (s *MemStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.letters)
}

// Add implements Store. It stores deep copies.
func (s *MemStore) Add(ctx context.Context, letters ...Record) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrStore, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, dl := range letters {
		if dl.ID == "" {
			return n, fmt.Errorf("%w: dead letter without id", ErrInvalidQuery)
		}
		if _, ok := s.letters[dl.ID]; ok {
			continue
		}
		if dl.Status == "" {
			dl.Status = StatusNew
		}
		s.letters[dl.ID] = &memEntry{dl: cloneLetter(BoundRecord(dl))}
		n++
	}
	return n, nil
}

// Get implements Store.
func (s *MemStore) Get(ctx context.Context, id string) (Record, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, fmt.Errorf("%w: %w", ErrStore, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.letters[id]
	if !ok {
		return Record{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return cloneLetter(e.dl), nil
}

// List implements Store.
func (s *MemStore) List(ctx context.Context, f Filter) ([]Record, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStore, err)
	}
	s.mu.Lock()
	entries := s.selectLocked(f, nil)
	out := make([]Record, 0, len(entries))
	for _, e := range entries {
		out = append(out, cloneLetter(e.dl))
	}
	s.mu.Unlock()
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

// selectLocked returns the matching entries in replay order.
func (s *MemStore) selectLocked(f Filter, after *Cursor) []*memEntry {
	ids := idSet(f.IDs)
	var out []*memEntry
	for _, e := range s.letters {
		if matches(&e.dl, f, ids) && (after == nil || cursorLess(*after, e.dl)) {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return letterLess(out[i].dl, out[j].dl) })
	return out
}

// idSet is the set of ids, nil when there are none (no ID filter).
func idSet(ids []string) map[string]bool {
	if len(ids) == 0 {
		return nil
	}
	set := make(map[string]bool, len(ids))
	for _, id := range ids {
		set[id] = true
	}
	return set
}

func matches(dl *Record, f Filter, ids map[string]bool) bool {
	switch {
	case ids != nil && !ids[dl.ID],
		f.Group != "" && dl.Fingerprint != f.Group,
		f.Topic != "" && dl.OriginalTopic != f.Topic,
		f.Handler != "" && dl.Handler != f.Handler,
		f.DLQTopic != "" && dl.DLQTopic != f.DLQTopic,
		len(f.Statuses) > 0 && !slices.Contains(f.Statuses, dl.Status),
		!f.Since.IsZero() && dl.FailedAt.Before(f.Since),
		!f.Until.IsZero() && !dl.FailedAt.Before(f.Until):
		return false
	}
	return true
}

func letterLess(a, b Record) bool {
	if !a.FailedAt.Equal(b.FailedAt) {
		return a.FailedAt.Before(b.FailedAt)
	}
	return a.ID < b.ID
}

// cursorLess reports whether c is before dl in replay order.
func cursorLess(c Cursor, dl Record) bool {
	if !c.At.Equal(dl.FailedAt) {
		return c.At.Before(dl.FailedAt)
	}
	return c.ID < dl.ID
}

// Claim implements Store.
func (s *MemStore) Claim(ctx context.Context, r ClaimRequest) ([]Record, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStore, err)
	}
	f := r.Filter
	if len(f.Statuses) == 0 {
		f.Statuses = []Status{StatusNew}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Record
	for _, e := range s.selectLocked(f, r.After) {
		if len(out) == r.Limit {
			break
		}
		if e.claimOwner != "" && r.Now.Before(e.claimUntil) {
			continue // held by a live claim
		}
		e.claimOwner = r.Owner
		e.claimUntil = r.Now.Add(r.Lease)
		out = append(out, cloneLetter(e.dl))
	}
	return out, nil
}

func (s *MemStore) claimed(id, owner string) (*memEntry, error) {
	e, ok := s.letters[id]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if e.claimOwner != owner {
		return nil, fmt.Errorf("%w: %q is not held by %q", ErrClaimLost, id, owner)
	}
	return e, nil
}

// MarkReplayed implements Store.
func (s *MemStore) MarkReplayed(ctx context.Context, id, owner, replayUUID string, at time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrStore, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.claimed(id, owner)
	if err != nil {
		return err
	}
	e.dl.Status = StatusReplayed
	e.dl.ReplayedAt = at
	e.dl.ReplayUUID = replayUUID
	e.dl.Reason = ""
	e.claimOwner, e.claimUntil = "", time.Time{}
	return nil
}

// Renew implements Renewer.
func (s *MemStore) Renew(ctx context.Context, owner string, until time.Time, ids ...string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrStore, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, id := range ids {
		if e, ok := s.letters[id]; ok && owner != "" && e.claimOwner == owner {
			e.claimUntil = until
			n++
		}
	}
	return n, nil
}

// Release implements Store.
func (s *MemStore) Release(ctx context.Context, id, owner, reason string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrStore, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.claimed(id, owner)
	if err != nil {
		return err
	}
	e.dl.Reason = reason
	e.claimOwner, e.claimUntil = "", time.Time{}
	return nil
}

// SetStatus implements Store. Letters under a claim are skipped, whatever
// its lease: the claimant completes or releases them.
func (s *MemStore) SetStatus(ctx context.Context, f Filter, st Status) (int, error) {
	if !st.Valid() {
		return 0, fmt.Errorf("%w: unknown status %q", ErrInvalidQuery, st)
	}
	if err := f.Validate(); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrStore, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, e := range s.selectLocked(f, nil) {
		if f.Limit > 0 && n == f.Limit {
			break
		}
		if e.claimOwner != "" || e.dl.Status == st {
			continue
		}
		e.dl.Status = st
		n++
	}
	return n, nil
}

// Prune implements Store.
func (s *MemStore) Prune(ctx context.Context, r Retention, now time.Time) (int, error) {
	if r.MaxAge < 0 || r.MaxCount < 0 {
		return 0, fmt.Errorf("%w: negative retention", ErrInvalidQuery)
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrStore, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	if r.MaxAge > 0 {
		cut := now.Add(-r.MaxAge)
		for id, e := range s.letters {
			if e.dl.FailedAt.Before(cut) {
				delete(s.letters, id)
				delete(s.events, id)
				n++
			}
		}
	}
	if r.MaxCount > 0 && len(s.letters) > r.MaxCount {
		all := s.selectLocked(Filter{}, nil)
		for _, e := range all[:len(all)-r.MaxCount] {
			delete(s.letters, e.dl.ID)
			delete(s.events, e.dl.ID)
			n++
		}
	}
	return n, nil
}

func cloneLetter(dl Record) Record {
	dl.Metadata = maps.Clone(dl.Metadata)
	dl.Payload = bytes.Clone(dl.Payload)
	return dl
}
