package chaos

import "time"

// How long the consumer held each delivery: from its Delivery to its
// Result, measured with the runner's clock (for a consumer process, when
// the runner read the events: within its 10ms poll). A delivery held
// past the transport's ack deadline may be delivered again while it still
// runs (JetStream redelivers after AckWait), and its ack may come after the
// redelivery: an at-least-once window the checker reports and explains.

// SetAckDeadline says the transport's ack deadline (0: none), so that the
// ledger counts deliveries held past it.
func (l *Ledger) SetAckDeadline(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ackDeadline = d
}

// holdBegins records the start of a delivery of g (under mu).
func (l *Ledger) holdBegins(id, gen int, now time.Time) {
	if l.open == nil {
		l.open = map[idGen][]time.Time{}
	}
	k := idGen{id, gen}
	l.open[k] = append(l.open[k], now)
}

// holdEnds records the end of the oldest open delivery of g (under mu);
// interrupted deliveries end without a hold (the kill ended them).
func (l *Ledger) holdEnds(g *genStat, id, gen int, now time.Time, interrupted bool) {
	k := idGen{id, gen}
	starts := l.open[k]
	if len(starts) == 0 {
		return
	}
	began := starts[0]
	if len(starts) == 1 {
		delete(l.open, k)
	} else {
		l.open[k] = starts[1:]
	}
	if interrupted {
		return
	}
	held := now.Sub(began)
	g.longestHold = max(g.longestHold, held)
	if l.ackDeadline > 0 && held >= l.ackDeadline {
		g.pastDeadline++
	}
}

// BrokerCount records the transport's delivery count (levee_delivery_count,
// set by the adapter from the broker) of a delivery of generation gen of
// message id: a second delivery the broker counts as its first is a second
// copy of the message in the broker.
func (l *Ledger) BrokerCount(id, gen, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.get(id)
	if e == nil {
		return
	}
	g := e.gen(gen)
	g.brokerMax = max(g.brokerMax, int32(n))
	if n == 1 {
		g.brokerFirsts++
	}
}
