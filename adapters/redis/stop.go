package redis

import (
	"context"
	"sync"
)

// stopper ends the subscriptions of every member of one transport in one
// pass. The transport's members are the subscriptions of its N slots,
// which FanIn closes each from its own goroutine; when each slot ended
// its members' contexts itself, the contexts of the messages the handlers
// held ended one slot after another, and between two of them a message
// still waiting could be let through by one that had just ended (a
// priority slot given back went to it, and its handler ran during the
// shutdown). The first slot to close now ends them all, as one
// subscription's end does on the other transports.
//
// It is safe for concurrent use.
type stopper struct {
	mu      sync.Mutex
	stopped bool                       // guarded by mu
	seq     int                        // guarded by mu
	cancels map[int]context.CancelFunc // guarded by mu
}

func newStopper() *stopper { return &stopper{cancels: map[int]context.CancelFunc{}} }

// add registers the cancel of a member's context and returns the func
// that forgets it once the member ended. After stop, it cancels at once.
func (s *stopper) add(cancel context.CancelFunc) (forget func()) {
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

// stop ends every registered member's context, and any added later. It is
// idempotent.
func (s *stopper) stop() {
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
