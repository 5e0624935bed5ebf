package dlqops_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/dlq/dlqops"
)

// TestOptionForAnotherConstructorIsRejected: every constructor takes the
// one Option type, and one given an option that serves another returns
// ErrInvalidConfig naming it, instead of ignoring it.
func TestOptionForAnotherConstructorIsRejected(t *testing.T) {
	s := dlqops.NewMemStore()
	build := map[string]func(...dlqops.Option) error{
		"NewMonitor": func(o ...dlqops.Option) error { _, err := dlqops.NewMonitor(s, o...); return err },
		"NewReplayer": func(o ...dlqops.Option) error {
			_, err := dlqops.NewReplayer(s, nil, o...)
			return err
		},
		"NewPruner": func(o ...dlqops.Option) error {
			_, err := dlqops.NewPruner(s, dlqops.Retention{MaxCount: 1}, time.Minute, o...)
			return err
		},
		"NewGroupGauges": func(o ...dlqops.Option) error {
			g, err := dlqops.NewGroupGauges(s, o...)
			if err == nil {
				return g.Close()
			}
			return err
		},
	}
	tests := []struct {
		option string
		opt    dlqops.Option
		takers []string
	}{
		{"WithClock", dlqops.WithClock(time.Now), []string{"NewMonitor", "NewReplayer", "NewPruner", "NewGroupGauges"}},
		{"WithLogger", dlqops.WithLogger(watermill.NopLogger{}), []string{"NewMonitor", "NewReplayer", "NewPruner"}},
		{"WithMeterProvider", dlqops.WithMeterProvider(nil), []string{"NewMonitor", "NewReplayer", "NewGroupGauges"}},
		{"WithStoreTimeout", dlqops.WithStoreTimeout(time.Second), []string{"NewMonitor", "NewGroupGauges"}},
		{"WithMonitorRetryAfter", dlqops.WithMonitorRetryAfter(time.Second), []string{"NewMonitor"}},
		{"WithMonitorBatchRows", dlqops.WithMonitorBatchRows(10), []string{"NewMonitor"}},
		{"WithReplayRate", dlqops.WithReplayRate(5), []string{"NewReplayer"}},
		{"WithMaxReplays", dlqops.WithMaxReplays(2), []string{"NewReplayer"}},
		{"WithReplayTopics", dlqops.WithReplayTopics("orders"), []string{"NewReplayer"}},
		{"WithGaugeWindow", dlqops.WithGaugeWindow(time.Minute), []string{"NewGroupGauges"}},
		{"WithGaugeMinInterval", dlqops.WithGaugeMinInterval(0), []string{"NewGroupGauges"}},
		{"WithGaugeMaxGroups", dlqops.WithGaugeMaxGroups(5), []string{"NewGroupGauges"}},
	}
	for _, tt := range tests {
		for name, newX := range build {
			t.Run(tt.option+"/"+name, func(t *testing.T) {
				takes := false
				for _, n := range tt.takers {
					takes = takes || n == name
				}
				err := newX(tt.opt)
				if takes {
					if err != nil {
						t.Fatalf("got %v, want nil", err)
					}
					return
				}
				if !errors.Is(err, dlqops.ErrInvalidConfig) || !errors.Is(err, levee.ErrInvalidConfig) ||
					!strings.Contains(err.Error(), name+" does not take "+tt.option) {
					t.Fatalf("got %v, want ErrInvalidConfig: %s does not take %s", err, name, tt.option)
				}
			})
		}
	}
}
