package chaos

import (
	"strconv"
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill"
)

// maxErrorsLogged bounds the error lines one consumer process writes to
// its event log (the rest are counted, not written).
const maxErrorsLogged = 50

// errorLogger is a consumer process's logger: it writes the errors the
// transport and the stack log (a failed JetStream ack, say), except the
// router's per-message "Handler returned error", to the process's event
// log, so the runner puts them in the timeline. Safe for concurrent use.
type errorLogger struct {
	watermill.NopLogger
	r      *run
	logged atomic.Int64
}

func (l *errorLogger) Error(msg string, err error, _ watermill.LogFields) {
	if msg == "Handler returned error" || l.r.events == nil {
		return
	}
	if n := l.logged.Add(1); n > maxErrorsLogged {
		return
	}
	e := ""
	if err != nil {
		e = err.Error()
	}
	l.r.events.errorLine(msg, e)
}

func (l *errorLogger) With(watermill.LogFields) watermill.LoggerAdapter { return l }

// errorLine records an error a consumer process logged.
func (e *eventLog) errorLine(msg, err string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.write(opError, strconv.Quote(msg), strconv.Quote(err))
}
