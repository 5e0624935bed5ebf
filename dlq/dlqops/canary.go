package dlqops

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/internal/gcra"
)

// DefaultCanaryWaves are the wave sizes of a canary replay when
// CanaryPlan.Waves is empty; after the last, its size repeats.
var defaultCanaryWaves = [...]int{1, 2, 5, 20, 50, 100}

// DefaultCanaryWaves returns the default wave sizes: 1, 2, 5, 20, 50, 100.
func DefaultCanaryWaves() []int { return slices.Clone(defaultCanaryWaves[:]) }

// Canary defaults.
const (
	// DefaultCanaryWait is how long a wave waits for its replays to be
	// dead-lettered again before it counts them processed.
	DefaultCanaryWait = 30 * time.Second
	// DefaultCanaryPoll is how often a wave looks for re-dead-letters.
	DefaultCanaryPoll = 500 * time.Millisecond
	// canarySkew widens the look-back for re-dead-letters: their FailedAt
	// comes from the consuming service's clock.
	canarySkew = time.Minute
	// canaryLookup bounds the letters one List of a look for
	// re-dead-letters reads; a look pages on until it has read every
	// letter of the topic since the wave began.
	canaryLookup = 10000
)

// CanaryPlan shapes a canary replay: waves of growing size, each waiting
// for the outcomes of its replays before the next starts, halting when a
// wave's failures pass a ratio.
type CanaryPlan struct {
	// Waves are the wave sizes in order; after the last, its size repeats
	// until the selection is exhausted. Empty means DefaultCanaryWaves.
	// Every size must be positive.
	Waves []int
	// MaxFailureRatio halts the replay when a wave's replays dead-lettered
	// again divided by its replays passes it (>). Zero halts on the first
	// failure; it must be in [0, 1).
	MaxFailureRatio float64
	// Wait is how long a wave waits for re-dead-letters: a replay not
	// dead-lettered again within it counts as processed. Zero means
	// DefaultCanaryWait. Keep it above the handler's retry budget.
	Wait time.Duration
	// Poll is how often a wave looks for re-dead-letters. Zero means
	// DefaultCanaryPoll.
	Poll time.Duration
	// Actor names who started it in the letters' event logs; "" means the
	// replayer's owner.
	Actor string
}

// Validate checks p and returns it with its defaults filled in; errors
// wrap ErrInvalidConfig.
func (p CanaryPlan) Validate() (CanaryPlan, error) { return p.withDefaults() }

func (p CanaryPlan) withDefaults() (CanaryPlan, error) {
	if len(p.Waves) == 0 {
		p.Waves = DefaultCanaryWaves()
	}
	for _, w := range p.Waves {
		if w < 1 {
			return p, fmt.Errorf("%w: canary wave size %d must be positive", ErrInvalidConfig, w)
		}
	}
	if math.IsNaN(p.MaxFailureRatio) || p.MaxFailureRatio < 0 || p.MaxFailureRatio >= 1 {
		return p, fmt.Errorf("%w: canary failure ratio %v not in [0, 1)", ErrInvalidConfig, p.MaxFailureRatio)
	}
	if p.Wait < 0 || p.Poll < 0 {
		return p, fmt.Errorf("%w: negative canary wait or poll", ErrInvalidConfig)
	}
	if p.Wait == 0 {
		p.Wait = DefaultCanaryWait
	}
	if p.Poll == 0 {
		p.Poll = DefaultCanaryPoll
	}
	return p, nil
}

// size returns the size of wave i (0-based).
func (p CanaryPlan) size(i int) int { return p.Waves[min(i, len(p.Waves)-1)] }

// CanaryWave is the outcome of one wave.
type CanaryWave struct {
	Wave        int `json:"wave"` // 1-based
	Size        int `json:"size"`
	Replayed    int `json:"replayed"`
	Held        int `json:"held"`
	FailedAgain int `json:"failed_again"`
	Processed   int `json:"processed"`
	// Halted says this wave's failures passed the ratio.
	Halted bool `json:"halted"`
}

// CanaryProgress is the state of a canary replay, reported after every
// change (a letter replayed, an outcome learned).
type CanaryProgress struct {
	// Waves so far; the last is the current one.
	Waves []CanaryWave `json:"waves"`
	// Replayed, Held, FailedAgain and Processed total the waves.
	Replayed    int `json:"replayed"`
	Held        int `json:"held"`
	FailedAgain int `json:"failed_again"`
	Processed   int `json:"processed"`
	// Waiting says the current wave waits for outcomes.
	Waiting bool `json:"waiting"`
	// Done says the replay ended; Halted that it stopped on failures,
	// leaving the rest of the selection untouched; Err why it stopped
	// otherwise ("" when it ran out of letters).
	Done    bool          `json:"done"`
	Halted  bool          `json:"halted"`
	Err     string        `json:"error,omitempty"`
	Elapsed time.Duration `json:"elapsed_ns"`
}

// canary is one canary run.
type canary struct {
	u        *run
	plan     CanaryPlan
	progress func(CanaryProgress)
	st       CanaryProgress
	browser  Browser // nil when the store keeps no events
	// late bounds the events recorded after the run's context ended
	late       context.Context
	lateCancel context.CancelFunc
}

// Canary replays the letters of sel in waves (see CanaryPlan) at the
// replayer's velocity limit and returns the final progress. Each wave
// claims and publishes its letters like Replay, then waits: a replay whose
// message is dead-lettered again (a new letter with the replay's UUID and
// dlq.KeyReplayOf naming the letter, found by its original topic) is a
// failure; one not dead-lettered again within plan.Wait is processed. The
// moment a wave's failures pass plan.MaxFailureRatio the run halts: the
// letters it did not claim keep StatusNew, untouched. When the store is a
// Browser every replay and outcome is added to the letter's events.
// progress (nil means none) is called on the replaying goroutine after
// every change. sel.DryRun is not supported. The error is non-nil when the
// run stopped for another reason than a halt or the end of the selection.
func (r *Replayer) Canary(ctx context.Context, sel ReplaySelection, plan CanaryPlan, progress func(CanaryProgress)) (CanaryProgress, error) {
	plan, err := plan.withDefaults()
	if err != nil {
		return CanaryProgress{}, err
	}
	if sel.DryRun {
		return CanaryProgress{}, fmt.Errorf("%w: a canary replay has no dry run", ErrInvalidConfig)
	}
	if r.pub == nil {
		return CanaryProgress{}, fmt.Errorf("%w: replayer has no publisher", ErrInvalidConfig)
	}
	if plan.Actor == "" {
		plan.Actor = r.cfg.owner
	}
	f := sel.Filter
	f.Statuses = []Status{StatusNew}
	if sel.Force {
		f.Statuses = append(f.Statuses, StatusReplayed)
	}
	if err := f.Validate(); err != nil {
		return CanaryProgress{}, err
	}
	c := &canary{u: &run{r: r, start: r.cfg.now(), newIdentity: sel.NewIdentity}, plan: plan, progress: progress}
	c.browser, _ = r.store.(Browser)
	if r.cfg.rate > 0 {
		l := gcra.New(false, r.cfg.rate, 1, gcra.DefaultCatchUp)
		defer l.Close()
		c.u.limiter = l
	}
	err = c.loop(ctx, f)
	if c.lateCancel != nil {
		c.lateCancel()
	}
	c.st.Done, c.st.Waiting = true, false
	if err != nil {
		c.st.Err = err.Error()
	}
	c.report()
	return c.st, err
}

func (c *canary) report() {
	c.st.Elapsed = c.u.r.cfg.now().Sub(c.u.start)
	if c.progress != nil {
		p := c.st
		p.Waves = slices.Clone(c.st.Waves)
		c.progress(p)
	}
}

func (c *canary) wave() *CanaryWave { return &c.st.Waves[len(c.st.Waves)-1] }

// loop runs waves until the selection is exhausted, a wave halts, or an
// error stops it.
func (c *canary) loop(ctx context.Context, f Filter) error {
	var after *Cursor
	for i := 0; ; i++ {
		size := c.plan.size(i)
		if f.Limit > 0 {
			size = min(size, f.Limit-c.u.rep.Processed)
			if size <= 0 {
				return nil
			}
		}
		c.st.Waves = append(c.st.Waves, CanaryWave{Wave: i + 1, Size: size})
		began := c.u.r.cfg.now()
		sent, exhausted, err := c.publish(ctx, f, &after, size)
		if err != nil {
			return err
		}
		if len(sent) > 0 {
			if err := c.await(ctx, sent, began); err != nil {
				return err
			}
		}
		if c.st.Halted {
			return nil
		}
		if exhausted {
			if w := c.wave(); w.Replayed == 0 && w.Held == 0 {
				c.st.Waves = c.st.Waves[:len(c.st.Waves)-1]
			}
			return nil
		}
	}
}

// publish replays up to size letters of the wave; exhausted says the
// selection has no more.
func (c *canary) publish(ctx context.Context, f Filter, after **Cursor, size int) ([]ReplayItem, bool, error) {
	var sent []ReplayItem
	w := c.wave()
	c.u.onItem = func(it ReplayItem) {
		switch it.Outcome {
		case OutcomeReplayed:
			sent = append(sent, it)
			w.Replayed++
			c.st.Replayed++
			c.event(ctx, it.ID, EventReplayed, fmt.Sprintf("canary wave %d", w.Wave), it.ReplayUUID)
		case OutcomeHeld:
			w.Held++
			c.st.Held++
			c.event(ctx, it.ID, EventHeld, it.Reason, "")
		}
		c.report()
	}
	defer func() { c.u.onItem = nil }()
	for w.Replayed < size {
		n, err := c.u.step(ctx, f, after, size-w.Replayed)
		if err != nil {
			return sent, false, err
		}
		if n == 0 {
			return sent, true, nil
		}
	}
	return sent, false, nil
}

// await waits for the outcomes of the wave's replays: until each was
// dead-lettered again, the wait ends, or the failures pass the ratio. It
// looks for letters that failed since the wave began (its first replay
// may have failed long before the last was published, at a slow rate),
// canarySkew earlier.
func (c *canary) await(ctx context.Context, sent []ReplayItem, began time.Time) error {
	w := c.wave()
	c.st.Waiting = true
	c.report()
	defer func() { c.st.Waiting = false }()
	pending := make(map[string]ReplayItem, len(sent))
	topics := map[string]bool{}
	for _, it := range sent {
		pending[it.ReplayUUID] = it
		topics[it.Topic] = true
	}
	since := began.Add(-canarySkew)
	deadline := time.NewTimer(c.plan.Wait)
	defer deadline.Stop()
	for {
		for t := range topics {
			if err := c.look(ctx, t, since, pending); err != nil {
				return err
			}
		}
		if float64(w.FailedAgain) > c.plan.MaxFailureRatio*float64(w.Replayed) {
			w.Halted, c.st.Halted = true, true
			for _, it := range pending {
				c.event(ctx, it.ID, EventCanaryHalted, fmt.Sprintf("wave %d: %d of %d dead-lettered again", w.Wave, w.FailedAgain, w.Replayed), it.ReplayUUID)
			}
			return nil
		}
		if len(pending) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			for _, it := range pending {
				w.Processed++
				c.st.Processed++
				c.event(ctx, it.ID, EventProcessed, fmt.Sprintf("not dead-lettered again within %s", c.plan.Wait), it.ReplayUUID)
			}
			c.report()
			return nil
		case <-time.After(c.plan.Poll):
		}
	}
}

// look reads the letters of topic that failed since since, oldest first,
// canaryLookup at a time, and counts each that is the re-dead-letter of a
// pending replay (its UUID, and dlq.KeyReplayOf naming the letter) as
// failed again. It pages on to the newest letter: during an outage a
// topic's new failures can outnumber canaryLookup in the window, and they
// are older than the replays' re-dead-letters (before, one List read only
// the oldest canaryLookup, so a failed replay counted as processed). A page
// whose letters all failed at one instant ends the look.
func (c *canary) look(ctx context.Context, topic string, since time.Time, pending map[string]ReplayItem) error {
	w := c.wave()
	for len(pending) > 0 {
		letters, err := c.u.r.store.List(ctx, Filter{Topic: topic, Since: since, Limit: canaryLookup})
		if err != nil {
			return err
		}
		for i := range letters {
			dl := &letters[i]
			it, ok := pending[dl.UUID]
			if !ok || dl.Metadata[dlq.KeyReplayOf] != it.ID {
				continue
			}
			delete(pending, dl.UUID)
			w.FailedAgain++
			c.st.FailedAgain++
			c.event(ctx, it.ID, EventFailedAgain, "dead-lettered again as "+dl.ID, it.ReplayUUID)
			c.report()
		}
		if len(letters) < canaryLookup || !letters[len(letters)-1].FailedAt.After(since) {
			return nil
		}
		since = letters[len(letters)-1].FailedAt
	}
	return nil
}

// event records an event when the store keeps them; a failure is logged,
// never fatal (the letters' state is in the store either way). What
// happened is recorded even when ctx ended (a replay published as the run
// was stopped): the events after that share one finishTimeout.
func (c *canary) event(ctx context.Context, id, action, detail, replayUUID string) {
	if c.browser == nil {
		return
	}
	if ctx.Err() != nil {
		if c.late == nil {
			c.late, c.lateCancel = context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
		}
		ctx = c.late
	}
	ev := Event{LetterID: id, At: c.u.r.cfg.now(), Actor: c.plan.Actor, Action: action, Detail: detail, ReplayUUID: replayUUID}
	if err := c.browser.AddEvent(ctx, ev); err != nil {
		c.u.r.cfg.logger.Error("levee dlq canary: event not recorded", err, nil)
	}
}
