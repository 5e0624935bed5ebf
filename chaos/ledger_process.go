package chaos

import "time"

// SetIncarnation says that the events recorded from now on come from
// consumer process number inc (0 for the first; every earlier one was
// killed or stopped): a delivery after an ack recorded by an earlier
// process counts as one after a killed ack.
func (l *Ledger) SetIncarnation(inc int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inc = int32(inc)
}

// Interrupted records that n deliveries of generation gen of message id
// were interrupted by the end of a consumer process (no result recorded),
// and whether the handler had succeeded in them.
func (l *Ledger) Interrupted(id, gen, n int, afterSuccess bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.get(id)
	if e == nil || n <= 0 {
		return
	}
	g := e.gen(gen)
	for range n {
		l.holdEnds(g, id, gen, time.Time{}, true)
	}
	g.killed += uint32(n)
	if afterSuccess {
		g.killedSuccess += uint32(n)
	}
}

// Overlapped records a delivery of generation gen of message id that
// began while another delivery of it was still running in the same
// consumer process (the transport's ack deadline passed meanwhile).
func (l *Ledger) Overlapped(id, gen int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.get(id); e != nil {
		e.gen(gen).overlapped++
	}
}
