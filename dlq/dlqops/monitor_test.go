package dlqops_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/internal/testkit"
)

var opsNow = time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)

func opsMonitor(t *testing.T, s dlqops.Store) *dlqops.Monitor {
	t.Helper()
	m, err := dlqops.NewMonitor(s, dlqops.WithClock(func() time.Time { return opsNow }))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestNewRecordBadInput(t *testing.T) {
	failedAt := opsNow.Add(-time.Hour)
	long := strings.Repeat("x", 10000)
	tests := []struct {
		name         string
		uuid         string
		md           map[string]string
		wantGroup    string
		wantTopic    string
		wantCount    int
		wantAt       time.Time
		unusableUUID bool
	}{
		{name: "well formed", uuid: "u1", md: opsDeadLetterMsg("u1", "orders", "0123456789abcdef", 2, failedAt).Metadata,
			wantGroup: "0123456789abcdef", wantTopic: "orders", wantCount: 2, wantAt: failedAt},
		{name: "no levee keys", uuid: "u2", md: map[string]string{"x": "y"}, wantGroup: dlqops.UnknownGroup, wantAt: opsNow},
		{name: "garbage fingerprint", uuid: "u3", md: map[string]string{dlq.KeyFingerprint: "DROP TABLE;"}, wantGroup: dlqops.UnknownGroup, wantAt: opsNow},
		{name: "upper-case fingerprint", uuid: "u3b", md: map[string]string{dlq.KeyFingerprint: "0123456789ABCDEF"}, wantGroup: dlqops.UnknownGroup, wantAt: opsNow},
		{name: "garbage counts and time", uuid: "u4", md: map[string]string{dlq.KeyReplayCount: "-3", dlq.KeyAttempts: "1e9",
			dlq.KeyLastFailureAt: "yesterday", dlq.KeyOriginalTopic: "  orders  "}, wantGroup: dlqops.UnknownGroup, wantTopic: "orders", wantAt: opsNow},
		{name: "year zero time", uuid: "u5", md: map[string]string{dlq.KeyLastFailureAt: "0000-01-01T00:00:00Z"}, wantGroup: dlqops.UnknownGroup, wantAt: opsNow},
		{name: "empty uuid", uuid: "", md: map[string]string{dlq.KeyFingerprint: "0123456789abcdef"}, wantGroup: "0123456789abcdef", wantAt: opsNow, unusableUUID: true},
		{name: "uuid with spaces", uuid: "a b", md: nil, wantGroup: dlqops.UnknownGroup, wantAt: opsNow, unusableUUID: true},
		{name: "oversize uuid", uuid: long, md: map[string]string{dlq.KeyError: long, dlq.KeyHandler: long}, wantGroup: dlqops.UnknownGroup, wantAt: opsNow, unusableUUID: true},
		{name: "invalid utf8", uuid: "u6", md: map[string]string{dlq.KeyOriginalTopic: "or\xffders", dlq.KeyError: "\xfe\xff"}, wantGroup: dlqops.UnknownGroup, wantTopic: "or\uFFFDders", wantAt: opsNow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := message.NewMessage(tt.uuid, []byte("p"))
			for k, v := range tt.md {
				msg.Metadata[k] = v
			}
			dl := dlqops.NewRecord(msg, "orders.dlq", opsNow)
			if dl.Fingerprint != tt.wantGroup {
				t.Errorf("group: got %q want %q", dl.Fingerprint, tt.wantGroup)
			}
			if dl.OriginalTopic != tt.wantTopic {
				t.Errorf("topic: got %q want %q", dl.OriginalTopic, tt.wantTopic)
			}
			if dl.ReplayCount != tt.wantCount {
				t.Errorf("replay count: got %d want %d", dl.ReplayCount, tt.wantCount)
			}
			if !dl.FailedAt.Equal(tt.wantAt) {
				t.Errorf("failed at: got %v want %v", dl.FailedAt, tt.wantAt)
			}
			if !strings.HasPrefix(dl.ID, "dl-") || len(dl.ID) != 35 {
				t.Errorf("id %q: want dl- and 32 hex digits", dl.ID)
			}
			if wantOrig := tt.uuid; tt.unusableUUID && dl.OriginalUUID != dl.ID || !tt.unusableUUID && dl.OriginalUUID != wantOrig {
				t.Errorf("original uuid %q (unusable uuid %v, id %q)", dl.OriginalUUID, tt.unusableUUID, dl.ID)
			}
			if len(dl.Error) > 4096 || len(dl.Handler) > 256 {
				t.Errorf("unbounded strings: error %d handler %d bytes", len(dl.Error), len(dl.Handler))
			}
			again := dlqops.NewRecord(msg, "orders.dlq", opsNow.Add(time.Hour))
			if again.ID != dl.ID {
				t.Errorf("redelivery changed the id: %q then %q", dl.ID, again.ID)
			}
		})
	}
}

func FuzzNewRecord(f *testing.F) {
	f.Add("u", "0123456789abcdef", "3", "2026-01-01T00:00:00Z", []byte("p"))
	f.Add("", "", "", "", []byte(nil))
	f.Add("\xff", "zz", "-1", "garbage", []byte{0})
	f.Fuzz(func(t *testing.T, uuid, fp, count, at string, payload []byte) {
		msg := message.NewMessage(uuid, payload)
		msg.Metadata[dlq.KeyFingerprint] = fp
		msg.Metadata[dlq.KeyReplayCount] = count
		msg.Metadata[dlq.KeyLastFailureAt] = at
		dl := dlqops.NewRecord(msg, "t", opsNow)
		if dl.ID == "" || dl.Fingerprint == "" || dl.ReplayCount < 0 {
			t.Fatalf("bad record %+v", dl)
		}
	})
}

func TestMonitorIdempotentOnRedelivery(t *testing.T) {
	s := dlqops.NewMemStore()
	m := opsMonitor(t, s)
	msg := opsDeadLetterMsg("u1", "orders", "0123456789abcdef", 0, opsNow)
	for range 3 {
		if err := m.Handle(msg); err != nil {
			t.Fatal(err)
		}
	}
	garbage := message.NewMessage("", []byte("hand written"))
	for range 2 {
		if err := m.Handle(garbage); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.Len(); got != 2 {
		t.Errorf("stored %d letters want 2", got)
	}
	groups, err := s.Groups(context.Background(), dlqops.GroupQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 2 || groups[0].Key != "0123456789abcdef" || groups[1].Key != dlqops.UnknownGroup {
		t.Errorf("groups: got %+v", groups)
	}
}

func TestMonitorStoreDownNacks(t *testing.T) {
	s := &opsFailingStore{MemStore: dlqops.NewMemStore(), fail: 1}
	m := opsMonitor(t, s)
	msg := opsDeadLetterMsg("u1", "orders", "0123456789abcdef", 0, opsNow)
	err := m.Handle(msg)
	if !errors.Is(err, dlqops.ErrStore) || !errors.Is(err, errOpsDown) {
		t.Fatalf("got %v want ErrStore wrapping the cause", err)
	}
	var ra interface{ RetryAfter() time.Duration }
	if !errors.As(err, &ra) || ra.RetryAfter() != dlqops.DefaultMonitorRetryAfter {
		t.Errorf("want a RetryAfter of %s, got %v", dlqops.DefaultMonitorRetryAfter, err)
	}
	if s.Len() != 0 {
		t.Fatalf("stored despite failure")
	}
	if err := m.Handle(msg); err != nil {
		t.Fatalf("redelivery: %v", err)
	}
	if s.Len() != 1 {
		t.Errorf("redelivery not stored")
	}
}

func TestNewMonitorInvalid(t *testing.T) {
	if _, err := dlqops.NewMonitor(nil); !errors.Is(err, dlqops.ErrInvalidConfig) {
		t.Errorf("nil store: got %v", err)
	}
	if _, err := dlqops.NewMonitor(dlqops.NewMemStore(), dlqops.WithMonitorRetryAfter(-time.Second)); !errors.Is(err, dlqops.ErrInvalidConfig) {
		t.Errorf("negative retry after: got %v", err)
	}
}

// TestMonitorOverRouterLosesNothing runs the dlq Retrier and the Monitor on a
// real Watermill router: the store is down for the first deliveries, the
// monitor Nacks, and every dead letter ends up stored exactly once.
func TestMonitorOverRouterLosesNothing(t *testing.T) {
	h := testkit.New(t)
	r, err := dlq.New(h.PubSub, dlq.WithTopic("orders.dlq"), dlq.WithMaxAttempts(1))
	if err != nil {
		t.Fatal(err)
	}
	s := &opsFailingStore{MemStore: dlqops.NewMemStore(), fail: 5}
	mon, err := dlqops.NewMonitor(s, dlqops.WithMonitorRetryAfter(0))
	if err != nil {
		t.Fatal(err)
	}
	var stored atomic.Int64
	h.Handle("orders-handler", "orders", func(*message.Message) error {
		return dlq.Permanent(errors.New("card declined"))
	}, r.Middleware)
	h.Handle("dlq-monitor", "orders.dlq", func(msg *message.Message) error {
		err := mon.Handle(msg)
		if err == nil {
			stored.Add(1)
		}
		return err
	})
	h.Start()
	const n = 20
	h.PublishN("orders", n, nil)
	h.WaitFor(func(testkit.Counts) bool { return stored.Load() >= n }, 10*time.Second)
	if got := s.Len(); got != n {
		t.Errorf("stored %d want %d", got, n)
	}
	letters, err := s.List(context.Background(), dlqops.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, dl := range letters {
		if dl.OriginalTopic != "orders" || dl.Handler != "orders-handler" || dl.Fingerprint == dlqops.UnknownGroup || dl.DLQTopic != "orders.dlq" {
			t.Fatalf("letter %+v", dl)
		}
	}
}
