package dlq_test

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/internal/testkit"
)

// forged is a producer's value meant to forge a log line.
const forged = "m-1\n[watermill] level=ERROR msg=\"payments are down\" forged=true\r"

// TestLogsKeepOneRecordALine: the dlq logs a message's UUID and its
// handler's error (which often quotes the message), and a producer
// chooses both. With Watermill's standard logger, which writes values as
// they are, a line break in them forged log lines, and a megabyte UUID
// made a megabyte line. Each record must stay one line, of bounded
// length, whatever the message holds; the values stay readable (quoted).
func TestLogsKeepOneRecordALine(t *testing.T) {
	var buf testkit.Buffer
	logger := watermill.NewStdLoggerWithOut(&buf, true, true)
	pub := newRecPublisher()
	b := dlq.DefaultBackoff()
	b.MaxAttempts, b.Initial, b.Max = 2, time.Nanosecond, time.Nanosecond
	r, err := dlq.New(pub, dlq.WithTopic(testDLQ), dlq.WithBackoff(b), dlq.WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	for _, uuid := range []string{forged, strings.Repeat("u", 1<<20) + forged} {
		h := r.Middleware(func(m *message.Message) ([]*message.Message, error) {
			return nil, fmt.Errorf("order %s: %w", m.UUID, errors.New("declined"))
		})
		if _, err := h(message.NewMessage(uuid, nil)); err != nil {
			t.Fatalf("not dead-lettered: %v", err)
		}
	}
	out := buf.String()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) < 4 {
		t.Fatalf("got %d log lines, want a retry and a dead letter per message:\n%.2000s", len(lines), out)
	}
	for i, l := range lines {
		if !record.MatchString(l) || strings.Contains(l, "\r") {
			t.Errorf("line %d is not a record of its own (forged): %.200q", i, l)
		}
		if len(l) > 8<<10 {
			t.Errorf("line %d: %d bytes, want at most 8 KiB", i, len(l))
		}
	}
	if !strings.Contains(out, `m-1\n[watermill] level=ERROR`) {
		t.Errorf("the UUID is not in the log, quoted:\n%.2000s", out)
	}
}

// record is the start of a line Watermill's standard logger writes.
var record = regexp.MustCompile(`^\[watermill\] \d{4}/\d\d/\d\d \d\d:\d\d:\d\d\.\d+ \w+\.go:\d+: \tlevel=`)
