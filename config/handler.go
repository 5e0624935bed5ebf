package config

import (
	"fmt"
	"strings"

	"github.com/levee-dev/levee/batch"
)

// Handler is one handler's section of the file: one key per concern,
// decoded and validated at load. A nil *Handler (the section of a handler
// the file does not configure) is empty: Batch reports false and Describe
// returns "".
type Handler struct {
	name  string
	parts []part
}

type part struct {
	sec   Section
	value any
}

// Name returns the router handler name the section configures.
func (h *Handler) Name() string {
	if h == nil {
		return ""
	}
	return h.name
}

// Batch returns the handler's batch section and whether it is present.
// The batch section configures the handler itself, not a middleware: pass
// c.Options() to batch.New, or use Config.Batcher.
func (h *Handler) Batch() (batch.Config, bool) { return Value[batch.Config](h, "batch") }

// Value returns the decoded value of the handler's section key as a C
// (the type the section was made with, for example batch.Config for
// "batch"), and whether it is present with that type. It is how a section
// added with NewSection and SlotHandler is read back.
func Value[C any](h *Handler, key string) (C, bool) {
	var zero C
	if h == nil {
		return zero, false
	}
	for _, p := range h.parts {
		if p.sec.Key == key {
			v, ok := p.value.(C)
			return v, ok
		}
	}
	return zero, false
}

// Describe returns the handler's resolved stack in canonical order, one
// concern per line with its settings, then the sections that configure
// the handler itself (batch).
func (h *Handler) Describe() string { return h.describe(nil) }

// describe is Describe with what the file's other sections add to a
// section's line, by section key (the schemas the dlq validates with).
func (h *Handler) describe(extra map[string]string) string {
	if h == nil {
		return ""
	}
	var b strings.Builder
	for i, p := range h.parts {
		fmt.Fprintf(&b, "%d. %s", i+1, p.sec.Key)
		for _, l := range []string{p.sec.label(p.value), extra[p.sec.Key]} {
			if l != "" {
				b.WriteString(" ")
				b.WriteString(l)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// Batcher returns a batch.Batcher for the named handler: fn processes each
// batch, configured by the handler's batch section (batch's defaults when
// there is none), bounded by deps (MaxHold as max_hold unless the section
// sets one, MaxInFlight as the concurrency checked at start) and observed
// with deps' Logger, TracerProvider and MeterProvider. opts are applied
// last. Register b.Handler (or b.NoPublishHandler) under the same name and
// Close the Batcher after the router has stopped. Errors are batch.New's.
//
// A max_wait (the section's, opts' or the default) not shorter than
// deps.MaxHold, when the section sets no max_hold, is an error naming
// max_wait and the max hold: every batch would fail with a
// *batch.HoldError before it flushed.
func (c *Config) Batcher(handler string, fn batch.Func, deps Deps, opts ...batch.Option) (*batch.Batcher, error) {
	if err := c.usable(); err != nil {
		return nil, err
	}
	bc, hasSection := c.Handler(handler).Batch()
	var own []batch.Option // the section's and opts, without deps
	if hasSection {
		own = append(own, bc.Options()...)
	}
	own = append(own, opts...)
	var all []batch.Option
	if deps.MaxHold > 0 {
		all = append(all, batch.WithMaxHold(deps.MaxHold))
	}
	if deps.MaxInFlight > 0 {
		all = append(all, batch.WithConcurrency(deps.MaxInFlight))
	}
	if hasSection {
		all = append(all, bc.Options()...)
	}
	all = append(all, batch.WithLogger(deps.Logger), batch.WithTracerProvider(deps.TracerProvider),
		batch.WithMeterProvider(deps.MeterProvider))
	b, err := batch.New(fn, append(all, opts...)...)
	if err == nil {
		return b, nil
	}
	if deps.MaxHold > 0 && bc.MaxHold == nil {
		// Valid without the max hold Deps gives: the batch's max_wait
		// reaches the hold, which the user did not set as max_hold.
		if alone, aerr := batch.New(fn, own...); aerr == nil {
			_ = alone.Close()
			path := "handlers." + handler + ".batch.max_wait"
			if bc.MaxWait == nil {
				path = "handlers." + handler + ".batch"
			}
			return nil, fmt.Errorf("%s: the batch's max_wait is not shorter than the max hold %s (config.Deps.MaxHold, "+
				"the transport's ack deadline less a margin): every batch would be failed with batch.HoldError before it flushes; "+
				"lower max_wait: %w", c.at(path), deps.MaxHold, err)
		}
	}
	return nil, fmt.Errorf("%s: handlers.%s.batch: %w", c.file, handler, err)
}
