package dedup

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"
)

// DefaultMaxKeys is the number of identities a MemStore keeps by default.
const DefaultMaxKeys = 100_000

// MemStore is the Store of one process: a map bounded to max identities.
// When full it forgets the oldest identity it recorded (its done mark, or
// its claim if that delivery is still running: keep max above the number
// of messages in flight), and it drops expired entries as it goes. A
// released claim is no identity and takes no room. It
// survives no restart: after one, a redelivered message runs again, so use
// it where duplicates come from the broker while the process lives, or for
// tests. Safe for concurrent use; a call never blocks on anything but its
// mutex, so ctx is not consulted.
type MemStore struct {
	max int

	mu    sync.Mutex
	items map[string]*memEntry // guarded by mu
	ring  []*memEntry          // guarded by mu; insertion order, oldest at head; grows up to max
	head  int                  // guarded by mu
	n     int                  // guarded by mu; live slots of ring
}

// memEntry is one identity. The ring holds the same pointer as the map, so
// sweeping the ring needs no lookup; gone marks an entry deleted from the
// map (released), whose ring slot is stale.
type memEntry struct {
	key   string
	token uint64
	until int64 // Unix nanoseconds: end of the lease or of the window
	done  bool
	gone  bool
}

// NewMemStore returns a MemStore that keeps at most max identities. max
// must be positive (DefaultMaxKeys is a fit for most services); otherwise
// the error wraps ErrInvalidConfig.
func NewMemStore(max int) (*MemStore, error) {
	if max <= 0 {
		return nil, fmt.Errorf("%w: memory store max keys %d must be positive", ErrInvalidConfig, max)
	}
	// The ring grows with use up to max: allocated at max up front, a
	// max_keys of 2^63-1 panicked (makeslice) and one of 10^9 took 8 GB
	// before the first message.
	return &MemStore{max: max, items: make(map[string]*memEntry, min(max, initialRing)), ring: make([]*memEntry, min(max, initialRing))}, nil
}

// Claim implements Store.
func (s *MemStore) Claim(_ context.Context, key string, token uint64, lease time.Duration) (Claim, error) {
	now := time.Now().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.items[key]
	switch {
	case !ok:
		s.insert(&memEntry{key: key, token: token, until: now + int64(lease)}, now)
		return Claim{Status: StatusClaimed}, nil
	case e.until > now && e.done:
		return Claim{Status: StatusDone}, nil
	case e.until > now:
		return Claim{Status: StatusBusy, Remaining: time.Duration(e.until - now)}, nil
	}
	tookOver := !e.done
	e.token, e.until, e.done = token, now+int64(lease), false
	return Claim{Status: StatusClaimed, TookOver: tookOver}, nil
}

// Done implements Store.
func (s *MemStore) Done(_ context.Context, key string, token uint64, window time.Duration) error {
	now := time.Now().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.items[key]; ok {
		e.token, e.until, e.done = token, now+int64(window), true
		return nil
	}
	s.insert(&memEntry{key: key, token: token, until: now + int64(window), done: true}, now)
	return nil
}

// IsDone implements DoneChecker.
func (s *MemStore) IsDone(_ context.Context, key string) (bool, error) {
	now := time.Now().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.items[key]
	return ok && e.done && e.until > now, nil
}

// Release implements Store.
func (s *MemStore) Release(_ context.Context, key string, token uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.items[key]; ok && !e.done && e.token == token {
		delete(s.items, key)
		e.gone = true
	}
	return nil
}

// Len returns the number of identities kept, expired ones included until
// they are swept.
func (s *MemStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.items)
}

// insert records a new entry, sweeping stale and expired entries at the
// head of the ring and forgetting the oldest when full. Called with mu
// held.
func (s *MemStore) insert(e *memEntry, now int64) {
sweep:
	for s.n > 0 {
		old := s.ring[s.head]
		switch {
		case old.gone: // released: a stale slot
		case old.until <= now || len(s.items) >= s.max: // expired, or the oldest of a full store
			delete(s.items, old.key)
		default:
			break sweep
		}
		s.ring[s.head] = nil
		s.head = (s.head + 1) % len(s.ring)
		s.n--
	}
	if s.n == len(s.ring) {
		// Released claims' slots count here but are no identities:
		// grow up to twice max, then drop them. With the ring at twice
		// max and fewer than max identities, over half its slots are
		// stale, so a compaction is rare (amortised O(1) an insert).
		// Counted against max, they made the store forget done marks
		// while it held far fewer than max identities: a breaker open
		// for a minute (each deferral a claim and a release) flushed
		// every done mark (TestMemStoreReleasesTakeNoRoom).
		if len(s.ring) < s.ringMax() {
			s.grow()
		} else {
			s.compact()
		}
	}
	s.ring[(s.head+s.n)%len(s.ring)] = e
	s.n++
	s.items[e.key] = e
}

// initialRing is the ring's first size (or max, when smaller).
const initialRing = 1024

// grow doubles the ring, up to twice max, keeping the order with the
// oldest at index 0. Called with mu held.
func (s *MemStore) grow() {
	ring := make([]*memEntry, min(2*len(s.ring), s.ringMax()))
	for i := range s.n {
		ring[i] = s.ring[(s.head+i)%len(s.ring)]
	}
	s.ring, s.head = ring, 0
}

// compact drops the released entries' stale slots from the ring, keeping
// the order with the oldest at index 0. Called with mu held.
func (s *MemStore) compact() {
	ring := make([]*memEntry, len(s.ring))
	n := 0
	for i := range s.n {
		if e := s.ring[(s.head+i)%len(s.ring)]; !e.gone {
			ring[n] = e
			n++
		}
	}
	s.ring, s.head, s.n = ring, 0, n
}

// ringMax is the most slots the ring grows to: twice max (max itself
// when twice would overflow), so released claims' stale slots never take
// an identity's room.
func (s *MemStore) ringMax() int {
	if s.max > math.MaxInt/2 {
		return s.max
	}
	return 2 * s.max
}
