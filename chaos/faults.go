package chaos

import (
	"context"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee/dlq/dlqops"
)

// replayEnv is what a replay fault needs.
type replayEnv struct {
	store     dlqops.Store
	pub       message.Publisher
	ledger    *Ledger
	cons      *consumer
	validator func(topic string, payload []byte) error
}

// replayRecorder records each replay in the ledger before publishing it.
type replayRecorder struct {
	message.Publisher
	env *replayEnv
}

func (r replayRecorder) Publish(topic string, msgs ...*message.Message) error {
	type idGen struct{ id, gen int }
	var recorded []idGen
	for _, m := range msgs {
		if id, gen, ok := r.env.cons.identify(m, "replay"); ok {
			r.env.ledger.Replayed(id, gen-1)
			recorded = append(recorded, idGen{id, gen - 1})
		}
	}
	err := r.Publisher.Publish(topic, msgs...)
	if err != nil {
		for _, x := range recorded {
			r.env.ledger.ReplayFailed(x.id, x.gen)
		}
	}
	return err
}

// faultLoop starts and ends every fault of the plan at its time, records
// them in the timeline, and runs the active ones (replays, broker
// restarts). It returns when every fault ended or done closes.
func faultLoop(ctx context.Context, done <-chan struct{}, p *Plan, tl *timeline, env *replayEnv, broker, storeServer *privateNATS,
	sup *supervisor) {
	bg := &background{}
	for i, f := range p.Faults {
		if f.Kind == FaultConsumerKill {
			if sup != nil {
				bg.go_(func() { sup.kills(ctx, done, tl, f, i) })
			}
			continue
		}
		bg.go_(func() {
			if !sleepUntil(ctx, done, tl.start.Add(f.Start)) {
				return
			}
			before, nacks := env.ledger.faultFailures(), env.cons.storeNacks.Load()
			switch f.Kind {
			case FaultReplay:
				tl.add("%s begins (every %s, up to %d letters a pass)", f.Kind, f.Every, f.Burst)
				runReplays(ctx, done, tl, f, env)
				return
			case FaultBrokerRestart:
				restartBroker(ctx, done, tl, f, broker)
				return
			case FaultStoreRestart:
				restartBroker(ctx, done, tl, f, storeServer)
				tl.add("%s: %d dead-letter deliveries Nacked meanwhile (store failed), redelivered", f.Kind, env.cons.storeNacks.Load()-nacks)
				return
			case FaultLatency:
				tl.add("%s begins: +%s per downstream call for %s", f.Kind, f.Delay, f.Duration)
			default:
				tl.add("%s begins for %s", f.Kind, f.Duration)
			}
			if !sleepUntil(ctx, done, tl.start.Add(f.End())) {
				return
			}
			if f.Kind == FaultStoreStall {
				// Writes made late in the stall fail up to a store
				// timeout after it.
				if !sleepUntil(ctx, done, tl.start.Add(f.End()+MonitorStoreTimeout)) {
					return
				}
				tl.add("%s ended %s ago: %d dead-letter deliveries Nacked (store write past its %s deadline), redelivered",
					f.Kind, MonitorStoreTimeout, env.cons.storeNacks.Load()-nacks, MonitorStoreTimeout)
				return
			}
			tl.add("%s ends: %d handler calls failed by injected faults meanwhile", f.Kind, env.ledger.faultFailures()-before)
		})
	}
	bg.wait()
}

// sleepUntil waits until t; false when ctx ended or done closed first.
func sleepUntil(ctx context.Context, done <-chan struct{}, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return true
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	case <-done:
		return false
	}
}

// runReplays replays new dead letters (except validation ones, which
// re-validation holds, and those replayed f.MaxReplays times already)
// every f.Every until the fault ends.
func runReplays(ctx context.Context, done <-chan struct{}, tl *timeline, f Fault, env *replayEnv) {
	r, err := dlqops.NewReplayer(env.store, replayRecorder{Publisher: env.pub, env: env},
		dlqops.WithReplayRate(5000), dlqops.WithReplayValidator(env.validator), dlqops.WithReplayOwner("levee-chaos"))
	if err != nil {
		tl.add("replay: %v", err)
		return
	}
	var passes, replayed, held, failed int
	end := tl.start.Add(f.End())
	for time.Now().Before(end) {
		rows, err := env.store.List(ctx, dlqops.Filter{Statuses: []dlqops.Status{dlqops.StatusNew}, Limit: 10000})
		if err != nil {
			tl.add("replay: listing the store: %v", err)
		}
		var ids []string
		for _, row := range rows {
			if row.ErrorClass != "validation" && row.ReplayCount < f.MaxReplays && len(ids) < f.Burst {
				ids = append(ids, row.ID)
			}
		}
		if len(ids) > 0 {
			rep, err := r.Replay(ctx, dlqops.ReplaySelection{Filter: dlqops.Filter{IDs: ids}})
			passes++
			replayed, held, failed = replayed+rep.Replayed, held+rep.Held, failed+rep.Failed
			if err != nil {
				tl.add("replay pass: %v", err)
			}
		}
		if !sleepUntil(ctx, done, time.Now().Add(f.Every)) {
			break
		}
	}
	tl.add("replay ends: %d passes, %d replayed, %d held, %d failed", passes, replayed, held, failed)
}
