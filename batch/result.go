package batch

import (
	"errors"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee"
)

// resolve maps the func's result to per-message results: errs (one per
// message) for a partial failure, or all for every message.
func resolve(msgs []*message.Message, err error) (errs []error, out outcome, all error) {
	if err == nil {
		return nil, outcomeOK, nil
	}
	var pe *levee.PanicError
	if errors.As(err, &pe) {
		return nil, outcomePanic, err
	}
	var per *Errors
	if !errors.As(err, &per) {
		return nil, outcomeError, err
	}
	if per.Len() == 0 {
		return nil, outcomeOK, nil
	}
	errs = make([]error, len(msgs))
	for i, e := range per.ByIndex {
		if i < 0 || i >= len(msgs) {
			return nil, outcomeError, invalid(err, "index %d is outside the batch of %d", i, len(msgs))
		}
		if e == nil {
			return nil, outcomeError, invalid(err, "index %d has a nil error", i)
		}
		errs[i] = e
	}
	if len(per.ByUUID) > 0 {
		matched := make(map[string]bool, len(per.ByUUID))
		for i, m := range msgs {
			e, ok := per.ByUUID[m.UUID]
			if !ok {
				continue
			}
			if e == nil {
				return nil, outcomeError, invalid(err, "UUID %q has a nil error", m.UUID)
			}
			matched[m.UUID] = true
			if errs[i] == nil {
				errs[i] = e
			} else {
				errs[i] = errors.Join(errs[i], e)
			}
		}
		if len(matched) != len(per.ByUUID) {
			for id := range per.ByUUID {
				if !matched[id] {
					return nil, outcomeError, invalid(err, "UUID %q names no message of the batch", id)
				}
			}
		}
	}
	return errs, outcomePartial, nil
}

func invalid(err error, format string, args ...any) error {
	return fmt.Errorf("%w: %s (batch func returned: %w)", ErrInvalidResult, fmt.Sprintf(format, args...), err)
}
