package config_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/config"
)

// A handler whose messages wait for rate-limit tokens holding slots of a
// scheduler other handlers share is warned about; a rejecting limit, no
// limit, or a scheduler of its own is not.
func TestWarningSharedSlotsRateLimit(t *testing.T) {
	const sched = "schedulers:\n  s: {slots: 2}\n  own: {slots: 2}\n"
	for _, tt := range []struct {
		name, y, want string // want "" for no warning
	}{
		{"wait on a shared scheduler",
			sched + "handlers:\n  reports:\n    priority: {scheduler: s}\n    ratelimit: {rate: 1/s}\n  pay:\n    priority: {scheduler: s}\n",
			"levee.yaml:7: handlers.reports.ratelimit: the messages of reports wait for rate-limit tokens while they hold a slot of scheduler s, which pay also use"},
		{"per-key limit",
			sched + "handlers:\n  reports:\n    priority: {scheduler: s}\n    ratelimit: {key: {metadata: k}, per_key: {rate: 1/s}}\n  pay:\n    priority: {scheduler: s}\n",
			"handlers.reports.ratelimit: the messages of reports wait"},
		{"fleet limit", sched + "handlers:\n  reports:\n    priority: {scheduler: s}\n    fleet: {ratelimit: {rate: 10/s}}\n  pay:\n    priority: {scheduler: s}\n",
			"handlers.reports.fleet.ratelimit: the messages of reports wait for fleet rate-limit tokens"},
		{"reject", sched + "handlers:\n  reports:\n    priority: {scheduler: s}\n    ratelimit: {rate: 1/s, mode: reject}\n  pay:\n    priority: {scheduler: s}\n", ""},
		{"scheduler of its own", sched + "handlers:\n  reports:\n    priority: {scheduler: own}\n    ratelimit: {rate: 1/s}\n  pay:\n    priority: {scheduler: s}\n", ""},
		{"no limit", sched + "handlers:\n  reports:\n    priority: {scheduler: s}\n    ratelimit: {}\n  pay:\n    priority: {scheduler: s}\n", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Parse("levee.yaml", []byte(tt.y), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Join(cfg.Warnings(config.Deps{}), "\n")
			if tt.want == "" {
				if strings.Contains(got, "hold a slot of scheduler") {
					t.Errorf("unexpected warning %q", got)
				}
				return
			}
			if !strings.Contains(got, tt.want) {
				t.Errorf("warnings %q lack %q", got, tt.want)
			}
		})
	}
}

// What the warning says, and that its advice works: a rate-limited
// handler flooding a shared scheduler of 2 slots makes another handler's
// message wait for its tokens; with mode: reject the other handler's
// message gets a slot at once. docs/PRIORITY.md ("With a rate limit")
// states the 4 s: on synctest's clock the wait is exact (six reports
// messages ahead of it, two slots, a token a second).
func TestSharedSlotsRateLimitHoldsSlots(t *testing.T) {
	for _, tt := range []struct {
		mode string
		want time.Duration // the pay message's wait
	}{
		{"wait", 4 * time.Second},
		{"reject", 0},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			y := "schedulers:\n  s: {slots: 2, aging: 1h}\nhandlers:\n" +
				"  reports:\n    priority: {scheduler: s}\n    ratelimit: {rate: 1/s, mode: " + tt.mode + "}\n" +
				"  pay:\n    priority: {scheduler: s}\n"
			synctest.Test(t, func(t *testing.T) {
				applied := buildFile(t, y)
				noop := func(*message.Message) ([]*message.Message, error) { return nil, nil }
				reports, pay := applied.Stack("reports").Middleware(noop), applied.Stack("pay").Middleware(noop)
				ctx, cancel := context.WithCancel(context.Background())
				var wg sync.WaitGroup
				for i := range 6 {
					wg.Go(func() {
						m := message.NewMessage("r"+string(rune('0'+i)), nil)
						m.SetContext(ctx)
						_, _ = reports(m)
					})
				}
				synctest.Wait()
				start := time.Now()
				m := message.NewMessage("p", nil)
				m.SetContext(context.Background())
				if _, err := pay(m); err != nil {
					t.Fatal(err)
				}
				waited := time.Since(start)
				cancel()
				wg.Wait()
				if waited != tt.want {
					t.Errorf("pay's message waited %s for a slot, want %s", waited, tt.want)
				}
			})
		})
	}
}
