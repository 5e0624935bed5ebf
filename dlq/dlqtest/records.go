package dlqtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
)

// addIsIdempotent is the AddIsIdempotent subtest of Run.
func addIsIdempotent(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t)
	a := Letter("a", "g1", "orders", "h", 0)
	n, err := s.Add(ctx, a, Letter("b", "g1", "orders", "h", time.Second))
	if err != nil || n != 2 {
		t.Fatalf("Add: got %d, %v want 2, nil", n, err)
	}
	a.Error = "changed"
	n, err = s.Add(ctx, a, a)
	if err != nil || n != 0 {
		t.Fatalf("re-Add: got %d, %v want 0, nil", n, err)
	}
	got, err := s.Get(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if got.Error != "failure of a" {
		t.Errorf("redelivery overwrote the record: error %q", got.Error)
	}
}

// roundTrip is the RoundTrip subtest of Run.
func roundTrip(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t)
	want := Letter("rt", "0123456789abcdef", "orders", "handler-ü", 0)
	want.Payload = []byte{0, 1, 2, 0xff, 'x'}
	want.Metadata["unicode"] = "ünïcödé ✓"
	want.ReplayCount = 2
	want.ConsumerGroup = "cg"
	if _, err := s.Add(ctx, want); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "rt")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Payload, want.Payload) {
		t.Errorf("payload: got %v want %v", got.Payload, want.Payload)
	}
	for k, v := range want.Metadata {
		if got.Metadata[k] != v {
			t.Errorf("metadata %s: got %q want %q", k, got.Metadata[k], v)
		}
	}
	if !got.FailedAt.Equal(want.FailedAt) || !got.ReceivedAt.Equal(want.ReceivedAt) {
		t.Errorf("times: got %v/%v want %v/%v", got.FailedAt, got.ReceivedAt, want.FailedAt, want.ReceivedAt)
	}
	if got.Handler != want.Handler || got.ReplayCount != 2 || got.ConsumerGroup != "cg" || got.Status != dlqops.StatusNew ||
		got.Attempts != 3 || got.ErrorClass != "permanent" || got.OriginalUUID != "rt" || got.DLQTopic != "orders.dlq" {
		t.Errorf("fields: got %+v", got)
	}
	if _, err := s.Get(ctx, "missing"); !errors.Is(err, dlqops.ErrNotFound) {
		t.Errorf("Get(missing): got %v want ErrNotFound", err)
	}
}

// oversizedLetterIsBounded is the OversizedLetterIsBounded subtest of Run.
func oversizedLetterIsBounded(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t)
	for i, tc := range []struct {
		name       string
		keys, bigs int
	}{
		{"4,000 metadata keys", 4000, 0},
		{"20,000 metadata keys and three 4 MB values", 20000, 3},
	} {
		dl := Letter(fmt.Sprintf("big-%d", i), "g", "orders", "h", time.Duration(i)*time.Second)
		for k := range tc.keys {
			dl.Metadata[fmt.Sprintf("hop-%05d", k)] = fmt.Sprintf("value %d", k)
		}
		for k := range tc.bigs {
			dl.Metadata[fmt.Sprintf("big-%d", k)] = strings.Repeat("x", 4<<20)
		}
		want := dlqops.BoundRecord(dl)
		if want.Truncated == "" {
			t.Fatalf("%s: BoundRecord cut nothing", tc.name)
		}
		if n, err := s.Add(ctx, dl); err != nil || n != 1 {
			t.Fatalf("%s: Add: got %d, %v want 1, nil", tc.name, n, err)
		}
		got, err := s.Get(ctx, dl.ID)
		if err != nil {
			t.Fatalf("%s: Get: %v", tc.name, err)
		}
		if got.Truncated != want.Truncated {
			t.Errorf("%s: Truncated %q want %q", tc.name, got.Truncated, want.Truncated)
		}
		if !maps.Equal(got.Metadata, want.Metadata) {
			t.Errorf("%s: stored %d metadata keys, not the %d BoundRecord keeps", tc.name, len(got.Metadata), len(want.Metadata))
		}
		if got.Metadata[dlq.KeyFingerprint] != "g" || got.Metadata[dlq.KeyOriginalTopic] != "orders" {
			t.Errorf("%s: Levee keys lost in the cut", tc.name)
		}
		if !bytes.Equal(got.Payload, dl.Payload) {
			t.Errorf("%s: payload changed", tc.name)
		}
	}
	listed, err := s.List(ctx, dlqops.Filter{})
	if err != nil || len(listed) != 2 || listed[0].Truncated == "" || listed[1].Truncated == "" {
		t.Errorf("List: got %d letters, %v; want both with Truncated", len(listed), err)
	}
	mustAdd(t, s, Letter("small", "g", "orders", "h", time.Hour))
	if got, err := s.Get(ctx, "small"); err != nil || got.Truncated != "" {
		t.Errorf("a letter within the caps: Truncated %q, %v; want kept whole", got.Truncated, err)
	}
}
