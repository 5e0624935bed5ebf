package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
)

// closingBackoff is watermill-sql's default backoff manager, except for a
// poll that failed because its subscription's context ended: at a
// shutdown or a rolling deploy Levee ends that context once the message in
// flight was settled, and a poll caught in between failed with "could not
// begin tx for querying: context canceled", which the default logged as
// an ERROR ("Error querying for message") on a clean stop. Such a failure
// is logged at debug and backs off as before; the consume loop then sees
// the context ended and returns. Every other error is the default's.
type closingBackoff struct{ wsql.BackoffManager }

func newClosingBackoff(poll time.Duration) closingBackoff {
	return closingBackoff{wsql.NewDefaultBackoffManager(poll, 0)}
}

// HandleError implements wsql.BackoffManager.
func (b closingBackoff) HandleError(logger watermill.LoggerAdapter, noMsg bool, err error) time.Duration {
	if err != nil && errors.Is(err, context.Canceled) {
		logger.Debug("levee postgres: poll ended by the subscription's close", watermill.LogFields{"err": err.Error()})
		return b.BackoffManager.HandleError(watermill.NopLogger{}, noMsg, err)
	}
	return b.BackoffManager.HandleError(logger, noMsg, err)
}
