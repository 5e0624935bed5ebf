package middleware

import (
	"io"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/internal/config"
)

// DefaultSections returns the handler-level sections Levee understands, one
// per concern. Each concern package owns its section's struct and
// validation; this list only wires them to slots.
func DefaultSections() []Section {
	return []Section{
		recoverSection(),
		timeoutSection(),
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
