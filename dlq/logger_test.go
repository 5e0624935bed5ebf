package dlq_test

import (
	"sync"

	"github.com/ThreeDotsLabs/watermill"
)

// recLogger records error messages.
type recLogger struct {
	mu   sync.Mutex
	errs *[]string
}

func (l *recLogger) Error(msg string, err error, _ watermill.LogFields) {
	l.mu.Lock()
	*l.errs = append(*l.errs, msg+": "+err.Error())
	l.mu.Unlock()
}
func (l *recLogger) Info(string, watermill.LogFields)                 {}
func (l *recLogger) Debug(string, watermill.LogFields)                {}
func (l *recLogger) Trace(string, watermill.LogFields)                {}
func (l *recLogger) With(watermill.LogFields) watermill.LoggerAdapter { return l }
