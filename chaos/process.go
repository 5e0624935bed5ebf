package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// ConsumerEnv is the environment variable through which a runner starts
// this program again as a consumer process (plans with
// consumer_process: true); its value describes the run.
const ConsumerEnv = "LEVEE_CHAOS_CONSUMER"

// processSpec is what a consumer process needs to join a run.
type processSpec struct {
	Plan        *Plan
	RunID       string
	BrokerURL   string // the private broker's, or "" for the loopback one
	StoreURL    string // the private store's, or "" for the loopback one
	Ledger      string // this process's event log (created by the runner)
	Previous    []string
	Incarnation int
	Start       int64 // the run's start, Unix nanoseconds (the faults' clock)
}

// ConsumerMain returns at once unless this program was started by a
// runner as a consumer process (ConsumerEnv is set); then it runs the
// handlers "chaos" and "chaos-batch" of the run until SIGTERM and exits
// (status 0, or 2 when it could not start). Programs that run plans with
// consumer_process: true call it first in main (chaos/cmd/chaos does; a
// test binary calls it in TestMain), because the runner starts its own
// executable again.
func ConsumerMain() {
	raw := os.Getenv(ConsumerEnv)
	if raw == "" {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	err := runConsumerProcess(ctx, raw)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos consumer:", err)
		os.Exit(2)
	}
	os.Exit(0)
}

// runConsumerProcess builds the handlers' stack over the run's transport,
// with the run's store for the shared attempt count, records every event
// in its event log and consumes until ctx ends.
func runConsumerProcess(ctx context.Context, raw string) error {
	var spec processSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		return fmt.Errorf("levee/chaos: %s: %w", ConsumerEnv, err)
	}
	if spec.Plan == nil {
		return fmt.Errorf("levee/chaos: %s carries no plan", ConsumerEnv)
	}
	if err := spec.Plan.Validate(); err != nil {
		return err
	}
	r := &run{p: spec.Plan, log: os.Stderr, runID: spec.RunID, role: roleConsumer, spec: &spec}
	r.logger = &errorLogger{r: r}
	defer r.close()
	for _, step := range []func(context.Context) error{r.prepare, r.openTransport, r.openStore, r.buildRouter} {
		if err := step(ctx); err != nil {
			return err
		}
	}
	r.start = time.Unix(0, spec.Start)
	r.cons.start = r.start
	routerDone := make(chan error, 1)
	go func() { routerDone <- r.router.Run(ctx) }()
	select {
	case <-r.router.Running():
	case err := <-routerDone:
		return fmt.Errorf("levee/chaos: router: %w", err)
	}
	r.events.ready(os.Getpid())
	reported := make(chan struct{})
	go func() {
		defer close(reported)
		r.report(ctx)
	}()
	err := <-routerDone
	<-reported
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("levee/chaos: router: %w", err)
	}
	return nil
}

// openEventLog draws every message's fate (the producer's sequence),
// replays the earlier processes' event logs into the process's Ledger, so
// calls count across processes, and records from now on in its own log.
func (r *run) openEventLog() error {
	for id := range r.p.Messages {
		r.ledger.Sent(id, r.assign.draw(r.p).fate)
	}
	for _, prev := range r.spec.Previous {
		if err := replayLog(prev, r.ledger); err != nil {
			return fmt.Errorf("levee/chaos: replaying %s: %w", prev, err)
		}
	}
	f, err := os.OpenFile(r.spec.Ledger, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("levee/chaos: event log: %w", err)
	}
	r.onClose(func() { _ = f.Close() })
	r.events = &eventLog{l: r.ledger, w: f, fail: func(err error) {
		fmt.Fprintln(os.Stderr, "chaos consumer:", err)
		os.Exit(3) // like a kill: nothing is acked after an event that was not recorded
	}}
	r.cons.rec = r.events
	return nil
}

// report writes the process's counters to its event log every
// reportEvery (and once at the end), and every breaker state change.
func (r *run) report(ctx context.Context) {
	const reportEvery = 250 * time.Millisecond
	tick := time.NewTicker(reportEvery)
	defer tick.Stop()
	done := make(chan struct{})
	go func() {
		<-ctx.Done()
		close(done)
	}()
	for {
		counters := r.tel.counters(context.WithoutCancel(ctx), counterNames...)
		for _, n := range counterNames {
			r.events.counter(n, counters[n])
		}
		select {
		case <-done:
			return
		case <-tick.C:
		}
	}
}
