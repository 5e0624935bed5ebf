package middleware

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/batch"
	"github.com/levee-dev/levee/internal/config"
)

// DefaultSections returns the handler-level sections Levee understands, one
// per concern. Each concern package owns its section's struct and
// validation; this list only wires them to slots.
func DefaultSections() []Section {
	return []Section{
		recoverSection(),
		timeoutSection(),
		handlerSection("batch", batchLabel),
	}
}

// recover: true adds Recover; recover: false (or absent) leaves it out.
func recoverSection() Section {
	return Section{
		Key:  "recover",
		Slot: SlotRecover,
		decode: func(raw config.Raw) (any, error) {
			var on bool
			if err := raw.Decode(&on); err != nil {
				return nil, err
			}
			if !on {
				return nil, nil
			}
			return true, nil
		},
		label: func(any) string { return "" },
		build: func(any, BuildEnv) (message.HandlerMiddleware, io.Closer, error) {
			return Recover, nil, nil
		},
	}
}

// timeout: 5s bounds one attempt.
func timeoutSection() Section {
	return Section{
		Key:  "timeout",
		Slot: SlotTimeout,
		decode: func(raw config.Raw) (any, error) {
			var d time.Duration
			if err := raw.Decode(&d); err != nil {
				return nil, err
			}
			t, err := NewTimeout(d)
			if err != nil {
				return nil, raw.Errorf("%v is not a valid timeout: it must be positive", d)
			}
			return t, nil
		},
		label: func(v any) string { return v.(*Timeout).d.String() },
		build: func(v any, _ BuildEnv) (message.HandlerMiddleware, io.Closer, error) {
			return v.(*Timeout).Middleware, nil, nil
		},
	}
}

// handlerSection returns a Section for a key that configures the handler
// itself (SlotHandler): decoded and validated with the file, read back with
// HandlerConfig.Value, and never added to the Stack.
func handlerSection[C any](key string, label func(C) string) Section {
	s := NewSection(key, SlotHandler, label, func(C, BuildEnv) (message.HandlerMiddleware, io.Closer, error) {
		return nil, nil, nil
	})
	return s
}

// batchLabel describes a batch section: the settings that were set.
func batchLabel(c batch.Config) string {
	var parts []string
	if c.MaxSize != nil {
		parts = append(parts, fmt.Sprintf("max_size=%d", *c.MaxSize))
	}
	if c.MaxBytes != nil {
		parts = append(parts, fmt.Sprintf("max_bytes=%d", *c.MaxBytes))
	}
	if c.MaxWait != nil {
		parts = append(parts, "max_wait="+c.MaxWait.String())
	}
	if c.MaxInFlight != nil {
		parts = append(parts, fmt.Sprintf("max_in_flight=%d", *c.MaxInFlight))
	}
	if c.MaxHold != nil {
		parts = append(parts, "max_hold="+c.MaxHold.String())
	}
	return strings.Join(parts, " ")
}
