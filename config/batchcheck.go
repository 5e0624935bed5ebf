package config

import (
	"fmt"
	"time"

	"github.com/levee-dev/levee/batch"
	iconfig "github.com/levee-dev/levee/internal/config"
	"github.com/levee-dev/levee/middleware"
	"github.com/levee-dev/levee/priority"
	"github.com/levee-dev/levee/ratelimit"
)

// batchConflicts returns an error for each setting of a handler with a
// batch section that is not longer than the batch's max_wait (the
// section's, or batch.DefaultMaxWait): a message waits in its batch up to
// max_wait before the func runs, so on a quiet service every attempt
// lasts that long. (A breaker's slow_call.threshold is not among them: the
// breaker takes the wait for the batch to start off a call's time.)
//   - timeout: the attempt times out while the message lingers; it leaves
//     the batch with a deferral before the batch flushes, and each
//     redelivery does the same: it is never written, never dead-lettered.
//   - an adaptive ratelimit's target_latency: the controller reads the
//     wait in the batch as the downstream's latency and cuts the rate;
//     batches then fill slower, so the rate stays at adaptive.min.
func (c *Config) batchConflicts(name string, hc *Handler) error {
	bc, ok := hc.Batch()
	if !ok {
		return nil
	}
	wait := maxWait(bc)
	var errs []error
	path := "handlers." + name
	if t, ok := Value[*middleware.Timeout](hc, "timeout"); ok && t.Duration() <= wait {
		errs = append(errs, c.errorAt(path+".timeout", fmt.Errorf("%s is not longer than the batch's max_wait (%s): "+
			"a message alone in its batch would time out before the batch flushes and be redelivered without ever being written; "+
			"set the timeout above max_wait plus the batch func's time", t.Duration(), wait)))
	}
	if rc, ok := Value[ratelimit.Config](hc, "ratelimit"); ok && rc.Adaptive != nil {
		if tl := rc.Adaptive.TargetLatency; tl > 0 && tl <= wait {
			errs = append(errs, c.errorAt(path+".ratelimit.adaptive.target_latency", fmt.Errorf("%s is not longer than the batch's max_wait (%s): "+
				"a message's latency includes its wait in the batch, longest when few messages arrive, so the adaptive limit would cut the rate "+
				"with a healthy downstream, batches would fill slower, and it would stay at adaptive.min; "+
				"set target_latency above max_wait plus the batch func's time, or leave it out (automatic)", tl, wait)))
		}
	}
	return iconfig.Join(errs...)
}

// errorAt locates err at the key path of the file.
func (c *Config) errorAt(path string, err error) error {
	return &iconfig.Error{File: c.file, Line: c.lineOf(path), Path: path, Err: err}
}

// batchSlotsWarning returns the warning for a handler with a batch
// section whose priority scheduler has fewer slots than the batch's
// max_size, or "". A message holds its slot while it waits in its batch,
// so a batch never holds more messages than the scheduler has slots (fewer
// when other handlers share it) and, not filling, waits max_wait.
func (c *Config) batchSlotsWarning(name string, h *Handler) string {
	bc, okB := h.Batch()
	pc, okP := Value[priority.Config](h, "priority")
	if !okB || !okP {
		return ""
	}
	raw, ok := c.shared["schedulers"][pc.Scheduler]
	if !ok {
		return ""
	}
	var sc priority.SchedulerConfig
	if err := raw.Decode(&sc); err != nil {
		return ""
	}
	slots, size, wait := priority.DefaultSlots, batch.DefaultMaxSize, maxWait(bc)
	if sc.Slots > 0 {
		slots = sc.Slots
	}
	if bc.MaxSize != nil {
		size = *bc.MaxSize
	}
	if slots >= size {
		return ""
	}
	return fmt.Sprintf("%s: scheduler %s has %d slots and the batch's max_size is %d: a message holds its slot while it waits in its batch, "+
		"so a batch never holds more than %d messages and waits max_wait (%s) to flush; give the scheduler at least max_size slots or lower max_size",
		c.at("handlers."+name+".priority"), pc.Scheduler, slots, size, slots, wait)
}

// maxWait returns the batch section's max_wait, or batch.DefaultMaxWait.
func maxWait(bc batch.Config) time.Duration {
	if bc.MaxWait != nil {
		return *bc.MaxWait
	}
	return batch.DefaultMaxWait
}
