package postgres

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
)

// TestClosingBackoffQuietOnClose: a poll that failed because the
// subscription's context ended (a clean stop) is not logged as an error,
// and backs off as the default does; any other failed poll is still an
// ERROR. Before, every few clean stops of a service over PostgreSQL logged
// `level=ERROR msg="Error querying for message" err="could not begin tx
// for querying: context canceled"`.
func TestClosingBackoffQuietOnClose(t *testing.T) {
	b := newClosingBackoff(100 * time.Millisecond)
	closed := fmt.Errorf("could not begin tx for querying: %w", context.Canceled)
	logger := watermill.NewCaptureLogger()
	if d := b.HandleError(logger, false, closed); d != time.Second {
		t.Errorf("backoff after a poll ended by the close: %v, want the default retry interval 1s", d)
	}
	if errs := logger.Captured()[watermill.ErrorLogLevel]; len(errs) != 0 {
		t.Errorf("a poll ended by the close was logged as an error: %+v", errs)
	}
	if len(logger.Captured()[watermill.DebugLogLevel]) != 1 {
		t.Errorf("a poll ended by the close is not logged at debug: %+v", logger.Captured())
	}

	broken := errors.New("could not begin tx for querying: connection refused")
	logger = watermill.NewCaptureLogger()
	if d := b.HandleError(logger, false, broken); d != time.Second {
		t.Errorf("backoff after a failed poll: %v, want 1s", d)
	}
	if !logger.HasError(broken) {
		t.Errorf("a failed poll is not logged as an error: %+v", logger.Captured())
	}
	if d := b.HandleError(watermill.NopLogger{}, true, nil); d != 100*time.Millisecond {
		t.Errorf("backoff after an empty poll: %v, want the poll interval 100ms", d)
	}
}
