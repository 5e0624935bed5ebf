package chaos

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// Print writes the checker's table, the deliveries-per-message histogram
// and the details.
func (r *Report) Print(w io.Writer) {
	var fates []string
	for _, k := range Kinds() {
		if n := r.ByFate[k]; n > 0 {
			fates = append(fates, fmt.Sprintf("%s %d", k, n))
		}
	}
	fmt.Fprintf(w, "sent %d (%s)\n\n", r.Sent, strings.Join(fates, ", "))
	r.printRows(w)

	fmt.Fprintf(w, "\ndeliveries per message (generation 0):\n")
	var ks []int
	for k := range r.DeliveriesPerMessage {
		ks = append(ks, k)
	}
	sort.Ints(ks)
	for _, k := range ks {
		fmt.Fprintf(w, "  %3d deliveries: %d\n", k, r.DeliveriesPerMessage[k])
	}
	if len(r.Details) > 0 {
		fmt.Fprintf(w, "\ndetails (first %d):\n", MaxDetails)
		for _, d := range r.Details {
			fmt.Fprintf(w, "  id %-8d %-16s %-26s %s\n", d.ID, d.Fate, d.Category, d.Note)
		}
	}
	for _, u := range r.UnexpectedSample {
		fmt.Fprintf(w, "  unexpected: %s id %q\n", u.Where, u.ID)
	}
	if r.Failed() {
		fmt.Fprintln(w, "\nverdict: FAIL")
	} else {
		fmt.Fprintln(w, "\nverdict: ok")
	}
}

// printRows writes the table's rows, one per category.
func (r *Report) printRows(w io.Writer) {
	row := func(name string, n int, must bool) {
		verdict := ""
		if must {
			verdict = "ok"
			if n != 0 {
				verdict = "FAIL"
			}
		}
		fmt.Fprintf(w, "  %-52s %10d  %s\n", name, n, verdict)
	}
	fmt.Fprintf(w, "  %-52s %10s  %s\n", "category", "messages", "verdict")
	row("processed (good, acked after a success)", r.Processed, false)
	row("dead-lettered (bad, stored once per generation)", r.DeadLettered, false)
	row("replays published", r.Replays, false)
	row("lost", r.Lost, true)
	row("unexpected (events)", r.Unexpected, true)
	row("wrongly dead-lettered", r.WronglyDeadLettered, true)
	row("exhausted by injected faults (max_attempts real failures)", r.ExhaustedByFaults, false)
	row("poison not dead-lettered", r.PoisonNotDeadLettered, true)
	row("wrong dead-letter class", r.WrongClass, true)
	row("attempts != expected (max_attempts for poison)", r.AttemptsMismatch, true)
	row("forged control metadata honoured", r.ForgedHonoured, true)
	if r.OrderChecked > 0 {
		row("messages checked for order per key", r.OrderChecked, false)
	}
	row("order violations per key", r.OrderViolations, r.opts.Ordered)
	row("duplicated (succeeded more than once)", r.Duplicated, false)
	row("  explained: success, then Nack (timeout or crash)", r.DupSuccessThenNack, false)
	row("  explained: redelivered after an ack (ack lost)", r.DupRedeliveredAfterAck, false)
	row("  explained: producer re-published after a publish error", r.DupRepublished, false)
	if r.opts.ConsumerKill {
		row("  explained: consumer killed between success and ack", r.DupConsumerKilled, false)
	}
	if r.opts.AckDeadline > 0 {
		row("  explained: held past the ack deadline, delivered again", r.DupAckDeadline, false)
	}
	row("  explained: the broker delivered it again as new", r.DupRecounted, false)
	row("  unexplained", r.DupUnexplained, true)
	if r.opts.Effects {
		row("side effects committed (rows, handler \"chaos\")", r.SideEffects, false)
		row("duplicated side effects (committed twice)", r.DupEffects, true)
		row("processed without a side effect", r.NoEffect, true)
	}
	row("dead letters consumed twice (stored once)", r.DuplicateDeadLetters, false)
	row("  bad messages handled again after a lost ack", r.RedeadLettered, false)
	row("bad messages handled again after a failed DLQ publish", r.HandledAfterPublishFailure, false)
	row("bad messages re-published by the producer (each copy dead-lettered)", r.RepublishedBad, false)
	row("handler calls failed by injected faults", r.FaultFailures, false)
	if r.opts.ConsumerKill {
		row("deliveries interrupted by a consumer kill", r.Interrupted, false)
		row("deliveries overlapping another of the message (ack deadline passed)", r.Overlapped, false)
		row("bad messages handled again after a consumer kill", r.KilledBad, false)
	}

	row("messages the broker delivered again as new (count back to 1)", r.Recounted, false)
	row("  bad messages handled again after it", r.RecountedBad, false)
	if r.opts.AckDeadline > 0 {
		row(fmt.Sprintf("deliveries held past the ack deadline (%s)", r.opts.AckDeadline), r.HeldPastDeadline, false)
		fmt.Fprintf(w, "  %-52s %10s\n", "longest hold of a delivery", r.LongestHold.Round(time.Millisecond))
	}
}
