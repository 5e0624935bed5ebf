package console

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/levee-dev/levee/dlq/dlqops"
)

// canaryRun is one canary replay started from the console.
type canaryRun struct {
	// ID is the process's prefix and the run's number in it: a console
	// restarted (killed mid-canary) numbers its runs anew, and the old
	// run's page, which a browser refreshes by itself, must not show
	// another run under its address.
	ID      string
	By, Key string
	Actor   string
	Started time.Time
	Plan    dlqops.CanaryPlan

	cancel context.CancelFunc // stops the run

	mu        sync.Mutex            // guards progress and stoppedBy
	progress  dlqops.CanaryProgress // guarded by mu
	stoppedBy string                // guarded by mu; who stopped the run
	// stopFailure is what else ended a run an operator stopped (a
	// publish the stop interrupted or that failed meanwhile: the broker
	// may have the replay), "" when only the stop did; guarded by mu
	stopFailure string
}

// StopFailure is what besides the stop ended a stopped run, or "".
func (c *canaryRun) StopFailure() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopFailure
}

func (c *canaryRun) snapshot() dlqops.CanaryProgress {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.progress
}

// StoppedBy names the operator who stopped the run ("" when nobody did).
func (c *canaryRun) StoppedBy() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stoppedBy
}

// stop asks a running run to stop on behalf of actor; it reports false
// when the run had already ended or been stopped.
func (c *canaryRun) stop(actor string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.progress.Done || c.stoppedBy != "" {
		return false
	}
	c.stoppedBy = actor
	c.cancel()
	return true
}

// canaries holds the runs of this process (they are not kept across
// restarts: the letters' events and the audit log are).
type canaries struct {
	prefix string // drawn at start: the runs' IDs are prefix-n
	mu     sync.Mutex
	runs   []*canaryRun // guarded by mu
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newCanaries() *canaries {
	ctx, cancel := context.WithCancel(context.Background())
	return &canaries{prefix: rand.Text()[:6], ctx: ctx, cancel: cancel}
}

func (c *canaries) stop() {
	c.cancel()
	c.wg.Wait()
}

// get returns the run of id, or nil when this process has none (an ID of
// the process before a restart included).
func (c *canaries) get(id string) *canaryRun {
	n, ok := strings.CutPrefix(id, c.prefix+"-")
	if !ok {
		return nil
	}
	i, err := strconv.Atoi(n)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil || i < 1 || i > len(c.runs) {
		return nil
	}
	return c.runs[i-1]
}

// errNoRun answers the page or the stop of a run this process does not
// have: the runs are kept in the process only.
var errNoRun = errBadInput("no such canary run in this console: it keeps its runs in memory, so a run started " +
	"before the console restarted is gone. What it replayed is in each letter's lineage and the audit log " +
	"(canary_started); the letters it held when it ended are new again once its claims' lease (" +
	dlqops.DefaultReplayLease.String() + ") ends, and a new canary of the group takes them up")

func (c *canaries) forGroup(by, key string) []*canaryRun {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*canaryRun
	for _, r := range c.runs {
		if r.By == by && r.Key == key {
			out = append(out, r)
		}
	}
	return out
}

// start runs a canary replay in the background. A group has at most one
// running canary.
func (c *canaries) start(run *canaryRun, rp *dlqops.Replayer, f dlqops.Filter) error {
	c.mu.Lock()
	for _, r := range c.runs {
		if r.By == run.By && r.Key == run.Key && !r.snapshot().Done {
			c.mu.Unlock()
			return fmt.Errorf("levee/console: canary %s of this group is still running", r.ID)
		}
	}
	ctx, cancel := context.WithCancel(c.ctx)
	run.cancel = cancel
	c.runs = append(c.runs, run)
	run.ID = c.prefix + "-" + strconv.Itoa(len(c.runs))
	c.mu.Unlock()
	c.wg.Go(func() {
		defer cancel()
		final, err := rp.Canary(ctx, dlqops.ReplaySelection{Filter: f}, run.Plan, func(p dlqops.CanaryProgress) {
			run.mu.Lock()
			run.progress = p
			run.mu.Unlock()
		})
		run.mu.Lock()
		run.progress = final
		if run.stoppedBy != "" && err != nil && !errors.Is(err, context.Canceled) {
			run.stopFailure = err.Error()
		}
		run.mu.Unlock()
	})
	return nil
}

func (s *Server) startCanary(w http.ResponseWriter, r *http.Request) {
	by, err := dlqops.ParseGroupBy(r.PostFormValue("by"))
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	key := r.PostFormValue("key")
	if key == "" {
		s.fail(w, r, http.StatusBadRequest, errNoKey)
		return
	}
	plan, rate, err := s.canaryForm(r)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	plan.Actor = who(r).Name
	rp, err := s.replayer(rate)
	if err != nil {
		s.fail(w, r, http.StatusConflict, err)
		return
	}
	run := &canaryRun{By: string(by), Key: key, Actor: plan.Actor, Started: s.deps.Now(), Plan: plan}
	if err := s.canaries.start(run, rp, groupFilter(by, key)); err != nil {
		s.fail(w, r, http.StatusConflict, err)
		return
	}
	s.audit(r, "canary_started", map[string]any{"by": string(by), "key": key, "run": run.ID, "waves": plan.Waves,
		"max_failure_ratio": plan.MaxFailureRatio, "wait": plan.Wait.String(), "rate": rate})
	http.Redirect(w, r, "/canary?run="+url.QueryEscape(run.ID), http.StatusSeeOther)
}

// canaryForm reads the plan from the form, the config's canary section
// giving the defaults.
func (s *Server) canaryForm(r *http.Request) (dlqops.CanaryPlan, float64, error) {
	c := s.cfg.Canary
	plan := dlqops.CanaryPlan{Waves: c.Waves, MaxFailureRatio: c.MaxFailureRatio, Wait: c.Wait}
	rate := c.Rate
	if rate == 0 {
		rate = DefaultCanaryRate
	}
	if v := strings.TrimSpace(r.PostFormValue("waves")); v != "" {
		plan.Waves = nil
		for _, p := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(p))
			if err != nil {
				return plan, 0, errBadInput("waves: " + err.Error())
			}
			plan.Waves = append(plan.Waves, n)
		}
	}
	var err error
	if v := r.PostFormValue("ratio"); v != "" {
		if plan.MaxFailureRatio, err = strconv.ParseFloat(v, 64); err != nil {
			return plan, 0, errBadInput("failure ratio: " + err.Error())
		}
	}
	if v := r.PostFormValue("wait"); v != "" {
		if plan.Wait, err = time.ParseDuration(v); err != nil {
			return plan, 0, errBadInput("wait: " + err.Error())
		}
	}
	if v := r.PostFormValue("rate"); v != "" {
		// NaN and Inf parse, and were refused only by the replayer, as a
		// conflict (409) naming its option.
		if rate, err = strconv.ParseFloat(v, 64); err != nil || math.IsNaN(rate) || math.IsInf(rate, 0) || rate < 0 {
			return plan, 0, errBadInput("rate: want a finite number of messages per second, 0 or more")
		}
	}
	plan, err = plan.Validate()
	return plan, rate, err
}

// stopCanary stops a running canary replay: the letters of the current
// wave that were already published stay replayed (their outcomes are no
// longer awaited), and the letters it did not claim stay new, untouched.
func (s *Server) stopCanary(w http.ResponseWriter, r *http.Request) {
	run := s.canaries.get(r.PostFormValue("run"))
	if run == nil {
		s.fail(w, r, http.StatusNotFound, errNoRun)
		return
	}
	if !run.stop(who(r).Name) {
		s.fail(w, r, http.StatusConflict, errBadInput(fmt.Sprintf("canary run %s has already ended", run.ID)))
		return
	}
	s.audit(r, "canary_stopped", map[string]any{"by": run.By, "key": run.Key, "run": run.ID})
	http.Redirect(w, r, "/canary?run="+url.QueryEscape(run.ID), http.StatusSeeOther)
}

func (s *Server) canaryPage(w http.ResponseWriter, r *http.Request) {
	run := s.canaries.get(r.URL.Query().Get("run"))
	if run == nil {
		s.fail(w, r, http.StatusNotFound, errNoRun)
		return
	}
	p := run.snapshot()
	left := -1 // unknown
	by, _ := dlqops.ParseGroupBy(run.By)
	if gs, err := s.store.Groups(r.Context(), dlqops.GroupQuery{By: by, Filter: groupFilter(by, run.Key)}); err == nil {
		left = 0
		for _, g := range gs {
			left += g.New
		}
	}
	s.render(w, r, http.StatusOK, "canary.html", map[string]any{"Title": "Canary replay " + run.ID, "Run": run,
		"P": p, "Refresh": !p.Done, "Left": left, "Lease": dlqops.DefaultReplayLease, "Elapsed": p.Elapsed.Round(time.Millisecond)})
}
