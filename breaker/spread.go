package breaker

// maxSpread bounds each set of a spread. Past it a message is not
// remembered: a full failing set passes the gate, a full seen set asks for
// the whole threshold, so memory stays bounded however many messages a
// streak meets.
const maxSpread = 4096

// spread is the gate of the consecutive-failures trip: which messages (by
// UUID) failed in the current run of failures, and which messages' calls
// ended in it at all (failures and excluded outcomes, such as a deferral by
// a layer further in). A run of failures trips the breaker only when it
// comes from at least min(threshold, seen) distinct messages: the dlq
// retrying a few poison messages while other messages keep arriving
// (deferred, or waiting) makes a long run of failures from few messages,
// which is not what a downstream outage looks like; an outage fails every
// message that reaches the handler, so with one message in flight (an
// ordered consumer) its retries alone still trip the breaker as soon as
// before. The sets are empty outside a run of failures; the owner guards
// them (Breaker.mu).
type spread struct {
	failed, seen map[string]struct{}
}

// fail records a failure of message id in the current run.
func (s *spread) fail(id string) {
	if s.failed == nil {
		s.failed, s.seen = make(map[string]struct{}), make(map[string]struct{})
	}
	if id == "" {
		return
	}
	if len(s.failed) < maxSpread {
		s.failed[id] = struct{}{}
	}
	s.add(id)
}

// see records an excluded outcome of message id during the current run.
func (s *spread) see(id string) {
	if s.seen != nil && id != "" {
		s.add(id)
	}
}

func (s *spread) add(id string) {
	if len(s.seen) < maxSpread {
		s.seen[id] = struct{}{}
	}
}

// wide reports whether the run's failures come from enough distinct
// messages to trip a breaker of the given threshold. Failures without a
// UUID are not told apart and never hold the trip back.
func (s *spread) wide(threshold int) bool {
	if len(s.failed) == 0 || len(s.failed) >= maxSpread {
		return true
	}
	return len(s.failed) >= min(threshold, len(s.seen))
}

// reset ends the run: a success, a state change, or the run rolling out
// of the window.
func (s *spread) reset() {
	if len(s.seen) > 0 {
		clear(s.failed)
		clear(s.seen)
	}
}
