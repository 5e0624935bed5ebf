package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/adapters/dlqstore"
	"github.com/levee-dev/levee/dlq/dlqops"
)

// watchDeadLetters watches the dead-letter topics: the Monitor records
// every dead letter in a store (the `store:` section: in memory by
// default, Redis or PostgreSQL with -store), where they are grouped,
// alerted on and replayed (`levee dlq` reads the same store).
func (d *demo) watchDeadLetters(ctx context.Context) error {
	sc, err := storeConfig(d.cfg, d.o.store, d.o.storePrefix)
	if err != nil {
		return err
	}
	store, closeStore, err := dlqstore.FromConfig(ctx, sc)
	if err != nil {
		return err
	}
	d.onClose(func() { closeStore() })
	d.sc, d.store = sc, store
	monitor, err := dlqops.NewMonitor(store, dlqops.WithMeterProvider(d.tel.mp), dlqops.WithStoreTimeout(sc.StoreTimeout()))
	if err != nil {
		return err
	}
	// Per-group gauges (levee_dlq_group_dead_letters{group,status}): the
	// dashboard's "Dead letters per group" panel.
	gauges, err := dlqops.NewGroupGauges(store, dlqops.WithMeterProvider(d.tel.mp), dlqops.WithGaugeMinInterval(time.Second))
	if err != nil {
		return err
	}
	d.onClose(func() { gauges.Close() })
	for _, t := range d.topics.all() {
		d.router.AddConsumerHandler("dlq-watch-"+t, t+".dlq", d.tr.Subscriber, func(msg *message.Message) error {
			if err := monitor.Handle(msg); err != nil {
				return err // Nack: nothing is lost when the store is down
			}
			return d.tracker.DeadLetterHandler(msg)
		})
	}
	return nil
}

// printGroups prints the groups of the dead letters that failed at or
// after start, largest first.
func printGroups(ctx context.Context, w io.Writer, store dlqops.Store, start time.Time) error {
	groups, err := store.Groups(ctx, dlqops.GroupQuery{Filter: dlqops.Filter{Since: start}, WindowStart: start})
	if err != nil {
		return err
	}
	if len(groups) == 0 {
		fmt.Fprintln(w, "  (none)")
	}
	for _, g := range groups {
		sample := g.SampleError
		if len(sample) > 96 {
			sample = sample[:93] + "..."
		}
		fmt.Fprintf(w, "  %s  count %-3d new %-3d replayed %-3d %-10s %s\n      %s\n", g.Key, g.Count, g.New, g.Replayed,
			g.ErrorClass, strings.Join(g.Handlers, ","), sample)
	}
	return nil
}

// replayFixed lifts the gateway limit (the "fix") and replays the group of
// over-limit orders at a bounded rate, then waits until payments processed
// every replayed message.
func replayFixed(ctx context.Context, w io.Writer, o options, store dlqops.Store, pub message.Publisher, g *Gateway, t *Tracker, start time.Time) error {
	groups, err := store.Groups(ctx, dlqops.GroupQuery{Filter: dlqops.Filter{Since: start}})
	if err != nil {
		return err
	}
	var fixed *dlqops.Group
	for i := range groups {
		// A stored group keeps its sample error as text only (the error
		// value is gone), so the over-limit group is found by its text.
		if strings.Contains(groups[i].SampleError, "exceeds the gateway limit") {
			fixed = &groups[i]
		}
	}
	if fixed == nil {
		fmt.Fprintln(w, "\nreplay: no over-limit group to replay")
		return nil
	}
	g.SetLimit(0)
	_, before := t.Settled("payments")
	r, err := dlqops.NewReplayer(store, pub, dlqops.WithReplayRate(50))
	if err != nil {
		return err
	}
	rep, err := r.Replay(ctx, dlqops.ReplaySelection{Filter: dlqops.Filter{Group: fixed.Key, Since: start}})
	if err != nil {
		return err
	}
	ok := t.Wait(func() bool { _, n := t.Settled("payments"); return n >= before+rep.Replayed }, o.maxRun)
	_, after := t.Settled("payments")
	fmt.Fprintf(w, "\nreplay of group %s (gateway limit lifted): %d replayed at 50/s in %s, %d held, %d failed; payments processed %d of them\n",
		fixed.Key, rep.Replayed, rep.Elapsed.Round(time.Millisecond), rep.Held, rep.Failed, after-before)
	if !ok {
		return fmt.Errorf("replayed messages were not processed within %s", o.maxRun)
	}
	return printGroups(ctx, w, store, start)
}
