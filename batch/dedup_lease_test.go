package batch_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/batch"
)

// TestDedupLeaseWarning: a Batcher built in code behind a deduplicator
// whose claim lease is not above max_wait logs a warning at New, as
// config's Warnings does for a YAML handler: a message holds its claim
// while it waits in its batch, so in a batch that does not fill the claim
// lapses and a duplicate runs too (TestBatchDedupLeaseWithinMaxWait in
// middleware). Before, code-only users got no check.
func TestDedupLeaseWarning(t *testing.T) {
	if w := batch.DedupLeaseWarning(time.Second, time.Second); !strings.Contains(w, "dedup.WithLease") {
		t.Errorf("DedupLeaseWarning %q does not say how to fix it (dedup.WithLease)", w)
	}
	for _, tt := range []struct {
		name    string
		opts    []batch.Option
		warning string // "" for none
	}{
		{"lease below max_wait", []batch.Option{batch.WithMaxWait(2 * time.Second), batch.WithDedupLease(time.Second)},
			"the dedup lease (1s) is not above the batch's max_wait (2s)"},
		{"lease equal to max_wait", []batch.Option{batch.WithMaxWait(time.Second), batch.WithDedupLease(time.Second)},
			"the dedup lease (1s) is not above the batch's max_wait (1s)"},
		{"lease below the default max_wait", []batch.Option{batch.WithDedupLease(10 * time.Millisecond)},
			"the dedup lease (10ms) is not above the batch's max_wait (50ms)"},
		{"lease above max_wait", []batch.Option{batch.WithMaxWait(time.Second), batch.WithDedupLease(30 * time.Second)}, ""},
		{"no deduplicator", []batch.Option{batch.WithMaxWait(time.Hour)}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			logger := watermill.NewCaptureLogger()
			b, err := batch.New(func(context.Context, []*message.Message) error { return nil },
				append(tt.opts, batch.WithLogger(logger))...)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			var got []string
			for _, m := range logger.Captured()[watermill.InfoLogLevel] {
				got = append(got, m.Msg)
			}
			switch {
			case tt.warning == "" && len(got) != 0:
				t.Errorf("got log %q, want no warning", got)
			case tt.warning != "" && (len(got) != 1 || !strings.HasPrefix(got[0], "WARNING: levee/batch: ") || !strings.Contains(got[0], tt.warning)):
				t.Errorf("got log %q, want one warning saying %q", got, tt.warning)
			}
		})
	}
}

// A lease of zero or less is an error from New naming the option: no
// deduplicator has one, so it is a mistake, not "no check".
func TestDedupLeaseInvalid(t *testing.T) {
	for _, d := range []time.Duration{0, -time.Second} {
		_, err := batch.New(func(context.Context, []*message.Message) error { return nil }, batch.WithDedupLease(d))
		if !errors.Is(err, batch.ErrInvalidConfig) || !strings.Contains(err.Error(), "dedup_lease") {
			t.Errorf("WithDedupLease(%s): got %v, want ErrInvalidConfig naming dedup_lease", d, err)
		}
	}
}
