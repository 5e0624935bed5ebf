package config

import (
	"fmt"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/levee-dev/levee/dedup"
	"github.com/levee-dev/levee/middleware"
)

// dedupSection is the handler key dedup: an idempotent consumer in the
// dedup slot (inside dlq, outside the breaker). store: memory builds a
// bounded memory store per handler; store: shared uses Deps.DedupStore
// (adapters/redisdedup or the PostgreSQL inbox adapters/pgdedup). The
// lease should exceed Deps.MaxHold: the claim is held while the breaker,
// priority and rate limit wait, and a lease that ends first lets a
// duplicate run; a shorter lease is logged (a transport with a long ack
// deadline, RabbitMQ's 30 minutes, would otherwise force a long crash
// recovery).
func dedupSection() Section {
	return newSection("dedup", middleware.SlotDedup, dedup.Config.Label,
		func(c dedup.Config, b BuildEnv) (built, error) {
			opts := c.Options()
			if c.Shared() {
				if b.Deps.DedupStore == nil {
					return built{}, fmt.Errorf("dedup store: shared needs Deps.DedupStore (adapters/redisdedup or adapters/pgdedup)")
				}
				// The store is shared by every handler: each its namespace.
				opts = append(opts, dedup.WithStore(b.Deps.DedupStore), dedup.WithNamespace(b.Handler))
			} else {
				s, err := dedup.NewMemStore(c.MaxKeysOrDefault())
				if err != nil {
					return built{}, err
				}
				opts = append(opts, dedup.WithStore(s))
			}
			opts = append(opts, dedup.WithName(b.Handler), dedup.WithMeterProvider(b.Deps.MeterProvider))
			if b.Deps.Logger != nil {
				opts = append(opts, dedup.WithLogger(b.Deps.Logger))
			}
			d, err := dedup.New(opts...)
			if err != nil {
				return built{}, err
			}
			if b.Deps.MaxHold > 0 && d.Lease() <= b.Deps.MaxHold && b.Deps.Logger != nil {
				b.Deps.Logger.Info("levee/config: dedup lease is not above the max hold: a message held inside the dedup slot longer than the lease may run beside a duplicate",
					watermill.LogFields{"handler": b.Handler, "lease": d.Lease().String(), "max_hold": b.Deps.MaxHold.String()})
			}
			return built{mw: d.Middleware, closer: d, instance: d}, nil
		})
}

// Dedup returns the deduplicator built for handler's dedup section.
func (a *Applied) Dedup(handler string) (*dedup.Dedup, bool) {
	return instance[*dedup.Dedup](a, handler, "dedup")
}

// dedupDefaults is the dedup section's entry of sectionDefaults.
func dedupDefaults() map[string]string {
	return map[string]string{
		"key": "the message UUID", "key.metadata": "none", "key.json_pointer": "none",
		"lease": dur(dedup.DefaultLease), "window": dur(dedup.DefaultWindow), "store": dedup.StoreMemory,
		"max_keys":      itoa(dedup.DefaultMaxKeys) + " (memory)",
		"store_timeout": dur(dedup.DefaultStoreTimeout), "busy_retry": dur(dedup.DefaultBusyRetry),
	}
}
