package kit

import (
	"context"
	"sync"
)

// Stopper ends many contexts in one pass: the contexts of the messages a
// closing subscriber's handlers hold. When each ended from its own
// goroutine (a relay per message, a slot per member), they ended one after
// another, and between two of them a message still waiting could be let
// through by one that had just ended (a priority slot given back went to
// it, and its handler ran during the shutdown). Whoever sees the shutdown
// first calls Stop, which ends them all back to back, as the end of a
// parent context does on the transports whose message contexts have one.
// A Stopper's Stop can itself be added to another Stopper (a subscriber's,
// over its subscriptions').
//
// It is safe for concurrent use.
type Stopper struct {
	mu      sync.Mutex
	stopped bool                       // guarded by mu
	seq     int                        // guarded by mu
	cancels map[int]context.CancelFunc // guarded by mu
}

// NewStopper returns a Stopper with nothing to stop.
func NewStopper() *Stopper { return &Stopper{cancels: map[int]context.CancelFunc{}} }

// Add registers cancel (a context's, or another Stopper's Stop) and
// returns the func that forgets it once its context ended otherwise.
// After Stop, it calls cancel at once.
func (s *Stopper) Add(cancel context.CancelFunc) (forget func()) {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		cancel()
		return func() {}
	}
	id := s.seq
	s.seq++
	s.cancels[id] = cancel
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		delete(s.cancels, id)
		s.mu.Unlock()
	}
}

// Stop calls every registered cancel, and any added later. It is
// idempotent.
func (s *Stopper) Stop() {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	s.stopped = true
	cancels := make([]context.CancelFunc, 0, len(s.cancels))
	for _, c := range s.cancels {
		cancels = append(cancels, c)
	}
	clear(s.cancels)
	s.mu.Unlock()
	for _, c := range cancels {
		c()
	}
}
