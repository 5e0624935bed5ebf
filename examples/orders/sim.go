package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/levee-dev/levee/dlq"
)

// ErrGatewayDown is what the payment gateway returns during an outage.
var ErrGatewayDown = errors.New("payment gateway unavailable")

// ErrGatewayTimeout is a transient failure: the same call may succeed later.
var ErrGatewayTimeout = errors.New("payment gateway timeout")

// Gateway simulates a payment provider: a fixed service time, an optional
// outage window, and a share of transient failures.
type Gateway struct {
	service       time.Duration
	outageAfter   time.Duration
	outage        time.Duration
	transientRate float64

	mu          sync.Mutex // guards the fields below
	outageStart time.Time  // set by the first call
	outageEnd   time.Time
	limit       int // cents; 0 means no limit
	rng         *rand.Rand
	calls       []time.Time
}

// NewGateway returns a gateway whose outage starts outageAfter after its
// first call and lasts outage (zero: no outage). Counting from the first
// call, not from start-up, the outage meets the orders however long the
// broker took to set up.
func NewGateway(service, outageAfter, outage time.Duration, transientRate float64, seed uint64) *Gateway {
	return &Gateway{
		service:       service,
		outageAfter:   outageAfter,
		outage:        outage,
		transientRate: transientRate,
		rng:           rand.New(rand.NewPCG(seed, seed+1)),
	}
}

// Charge charges an order.
func (g *Gateway) Charge(o Order) error {
	now := time.Now()
	g.mu.Lock()
	if len(g.calls) == 0 {
		g.outageStart = now.Add(g.outageAfter)
		g.outageEnd = g.outageStart.Add(g.outage)
	}
	g.calls = append(g.calls, now)
	transient := g.rng.Float64() < g.transientRate
	limit := g.limit
	start, end := g.outageStart, g.outageEnd
	g.mu.Unlock()
	if limit > 0 && o.Amount > limit {
		// Retrying cannot help: the message is dead-lettered at once.
		return dlq.Permanent(&OverLimitError{Order: o.ID, Amount: o.Amount, Limit: limit})
	}
	if !now.Before(start) && now.Before(end) {
		return ErrGatewayDown
	}
	time.Sleep(g.service)
	if transient {
		return fmt.Errorf("charging order %s: %w", o.ID, ErrGatewayTimeout)
	}
	return nil
}

// SetLimit sets the largest amount (cents) the gateway accepts; 0 lifts
// the limit.
func (g *Gateway) SetLimit(cents int) {
	g.mu.Lock()
	g.limit = cents
	g.mu.Unlock()
}

// OverLimitError is the gateway refusing an amount over its limit.
type OverLimitError struct {
	Order         string
	Amount, Limit int
}

func (e *OverLimitError) Error() string {
	return fmt.Sprintf("order %s: amount %d cents exceeds the gateway limit of %d cents", e.Order, e.Amount, e.Limit)
}

// CallsPerSecond returns how many calls reached the gateway in each second
// since start.
func (g *Gateway) CallsPerSecond(start time.Time) []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []int
	for _, c := range g.calls {
		s := int(c.Sub(start) / time.Second)
		if s < 0 {
			continue
		}
		for len(out) <= s {
			out = append(out, 0)
		}
		out[s]++
	}
	return out
}

// Inventory is an in-memory stock table.
type Inventory struct {
	mu       sync.Mutex // guards reserved
	reserved map[string]int
}

// NewInventory returns an empty inventory.
func NewInventory() *Inventory { return &Inventory{reserved: map[string]int{}} }

// Reserve records a reservation of qty of sku.
func (inv *Inventory) Reserve(sku string, qty int) {
	inv.mu.Lock()
	inv.reserved[sku] += qty
	inv.mu.Unlock()
}

// Total returns the number of units reserved.
func (inv *Inventory) Total() int {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	n := 0
	for _, q := range inv.reserved {
		n += q
	}
	return n
}

// SMSProvider simulates an SMS API.
type SMSProvider struct {
	mu   sync.Mutex // guards sent
	sent []time.Time
}

// Send sends one SMS.
func (p *SMSProvider) Send(to, text string) error {
	if to == "" || text == "" {
		return errors.New("sms: recipient and text are required")
	}
	p.mu.Lock()
	p.sent = append(p.sent, time.Now())
	p.mu.Unlock()
	return nil
}

// Rate returns the achieved send rate (messages per second) between the
// first and the last send.
func (p *SMSProvider) Rate() (count int, perSecond float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.sent) < 2 {
		return len(p.sent), 0
	}
	span := p.sent[len(p.sent)-1].Sub(p.sent[0]).Seconds()
	if span <= 0 {
		return len(p.sent), 0
	}
	return len(p.sent), float64(len(p.sent)-1) / span
}
