package dlqops_test

import (
	"context"
	"fmt"
	"maps"
	"os"
	"strings"
	"testing"
	"testing/synctest"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/internal/testkit"
)

// bigMetadata returns n keys "k00000"... with short values, the Levee
// failure keys, and big values of size bytes under "big0".., like a message
// that picked up headers on every hop.
func bigMetadata(n, big, size int) map[string]string {
	md := map[string]string{
		dlq.KeyOriginalTopic: "orders", dlq.KeyHandler: "h", dlq.KeyFingerprint: "0123456789abcdef",
		dlq.KeyError: "boom", dlq.KeyErrorClass: "permanent", dlq.KeyAttempts: "3",
	}
	for i := range n {
		md[fmt.Sprintf("k%05d", i)] = "value-" + fmt.Sprint(i)
	}
	for i := range big {
		md[fmt.Sprintf("big%d", i)] = strings.Repeat("é", size/2) // 2-byte runes: cuts must keep UTF-8 valid
	}
	return md
}

// checkBounded checks that md is within every cap and kept the Levee keys
// of orig.
func checkBounded(t *testing.T, md, orig map[string]string) {
	t.Helper()
	if len(md) > dlqops.MaxStoredMetadataKeys {
		t.Errorf("%d keys kept, cap %d", len(md), dlqops.MaxStoredMetadataKeys)
	}
	total := 0
	for k, v := range md {
		total += len(k) + len(v)
		if len(k) > dlqops.MaxStoredMetadataKeyBytes || len(v) > dlqops.MaxStoredMetadataValueBytes {
			t.Errorf("key %.20q: %d/%d bytes over the caps", k, len(k), len(v))
		}
		if !utf8.ValidString(v) {
			t.Errorf("value of %q is not valid UTF-8 after the cut", k)
		}
	}
	if total > dlqops.MaxStoredMetadataBytes {
		t.Errorf("%d metadata bytes kept, cap %d", total, dlqops.MaxStoredMetadataBytes)
	}
	for k, v := range orig {
		if strings.HasPrefix(k, "levee_") && md[k] != v {
			t.Errorf("Levee key %s: got %q want %q", k, md[k], v)
		}
	}
}

func TestBoundRecord(t *testing.T) {
	tests := []struct {
		name      string
		md        map[string]string
		wantWhole bool
		wantNote  []string
	}{
		{name: "small letter kept whole", md: bigMetadata(10, 0, 0), wantWhole: true},
		{name: "at the key cap kept whole", md: bigMetadata(dlqops.MaxStoredMetadataKeys-6, 0, 0), wantWhole: true},
		{name: "4,000 keys", md: bigMetadata(4000, 0, 0),
			wantNote: []string{"kept 1000 of 4006 keys", "3006 keys dropped over the caps of 1000 keys and 262144 bytes"}},
		{name: "20,000 keys and three 4 MB values", md: bigMetadata(20000, 3, 4<<20),
			wantNote: []string{"kept 1000 of 20009 keys", "3 values cut to 16384 bytes"}},
		{name: "one 4 MB value", md: bigMetadata(0, 1, 4<<20), wantNote: []string{"kept 7 of 7 keys", "1 values cut to 16384 bytes"}},
		{name: "many 16 KiB values hit the byte cap", md: bigMetadata(0, 40, dlqops.MaxStoredMetadataValueBytes),
			wantNote: []string{"keys dropped over the caps"}},
		{name: "long key dropped", md: map[string]string{strings.Repeat("k", dlqops.MaxStoredMetadataKeyBytes+1): "v", "a": "b"},
			wantNote: []string{"kept 1 of 2 keys", "1 keys longer than 256 bytes dropped"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := maps.Clone(tt.md)
			in := dlqops.Record{ID: "x", Metadata: tt.md}
			got := dlqops.BoundRecord(in)
			if !maps.Equal(tt.md, orig) {
				t.Fatal("BoundRecord modified the input map")
			}
			checkBounded(t, got.Metadata, orig)
			if tt.wantWhole {
				if got.Truncated != "" || !maps.Equal(got.Metadata, orig) {
					t.Errorf("cut a letter within the caps: %q", got.Truncated)
				}
				return
			}
			for _, w := range tt.wantNote {
				if !strings.Contains(got.Truncated, w) {
					t.Errorf("Truncated %q does not say %q", got.Truncated, w)
				}
			}
			again := dlqops.BoundRecord(got)
			if again.Truncated != got.Truncated || !maps.Equal(again.Metadata, got.Metadata) {
				t.Errorf("not idempotent: %q then %q", got.Truncated, again.Truncated)
			}
		})
	}
}

// NewRecord bounds a dead letter's metadata and records the cut; the
// memory store bounds a hand-built record the same way.
func TestNewRecordAndMemStoreBound(t *testing.T) {
	md := bigMetadata(20000, 3, 4<<20)
	msg := message.NewMessage("u-big", []byte("payload"))
	msg.Metadata = maps.Clone(md)
	rec := dlqops.NewRecord(msg, "orders.dlq", opsNow)
	checkBounded(t, rec.Metadata, md)
	if rec.Truncated == "" {
		t.Fatal("NewRecord cut the metadata without recording it")
	}
	if rec.Fingerprint != "0123456789abcdef" || rec.OriginalTopic != "orders" {
		t.Errorf("failure keys lost: %+v", rec)
	}

	s := dlqops.NewMemStore()
	hand := dlqops.Record{ID: "hand", Fingerprint: "g", Metadata: maps.Clone(md), FailedAt: opsNow, ReceivedAt: opsNow}
	if _, err := s.Add(context.Background(), hand); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(context.Background(), "hand")
	if err != nil {
		t.Fatal(err)
	}
	checkBounded(t, got.Metadata, md)
	if want := dlqops.BoundRecord(hand).Truncated; got.Truncated != want || want == "" {
		t.Errorf("stored Truncated %q want %q", got.Truncated, want)
	}
}

// docs/DLQ.md, docs/OPERATIONS.md and the README state the caps and the
// store timeout: the numbers must be the constants'.
func TestDocsStateTheStoreBounds(t *testing.T) {
	read := func(path string) string {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(raw)
	}
	for path, wants := range map[string][]string{
		"../../README.md": {fmt.Sprintf("timeout: %s ", dlqops.DefaultStoreTimeout), fmt.Sprintf("(default %s;", dlqops.DefaultStoreTimeout)},
		"../../docs/OPERATIONS.md": {
			fmt.Sprintf("timeout: %s ", dlqops.DefaultStoreTimeout), fmt.Sprintf("`store: timeout` (default %s)", dlqops.DefaultStoreTimeout),
			fmt.Sprintf("at most %d metadata keys", dlqops.MaxStoredMetadataKeys),
		},
	} {
		doc := read(path)
		for _, want := range wants {
			if !strings.Contains(doc, want) {
				t.Errorf("%s does not state %q", path, want)
			}
		}
	}
	doc := read("../../docs/DLQ.md")
	for _, want := range []string{
		fmt.Sprintf("%d metadata keys", dlqops.MaxStoredMetadataKeys),
		fmt.Sprintf("%d bytes a key", dlqops.MaxStoredMetadataKeyBytes),
		fmt.Sprintf("%d KiB a value", dlqops.MaxStoredMetadataValueBytes>>10),
		fmt.Sprintf("%d KiB of metadata in all", dlqops.MaxStoredMetadataBytes>>10),
		fmt.Sprintf("`timeout` (default %s;", dlqops.DefaultStoreTimeout),
		fmt.Sprintf("at most %d letters", dlqops.DefaultMonitorBatchRows),
		fmt.Sprintf("and %d MiB of payloads", dlqops.MonitorBatchBytes>>20),
		"\n  " + dlqops.BoundRecord(dlqops.Record{Metadata: bigMetadata(20000, 3, 4<<20)}).Truncated + "\n",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("docs/DLQ.md does not state %q", want)
		}
	}
}

// TestProducerLeveeKeysDoNotCrowdOutFailureKeys: a producer that wrote
// 1,500 keys with Levee's prefix ("levee_a0000"..., which sort before
// every failure key) on a message that then panicked made the store keep
// its keys and drop Levee's: the stored letter had no error, class,
// fingerprint, stack or code location in its metadata, so the console and
// `levee dlq show` showed no stack, and the replay lost the letter's dedup
// identity. The keys Levee writes are now kept first.
func TestProducerLeveeKeysDoNotCrowdOutFailureKeys(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		h := testkit.New(t)
		dr, err := dlq.New(h.PubSub, dlq.WithMaxAttempts(1), dlq.WithTopic("orders.dlq"))
		if err != nil {
			t.Fatal(err)
		}
		s := dlqops.NewMemStore()
		mon, err := dlqops.NewMonitor(s)
		if err != nil {
			t.Fatal(err)
		}
		h.Handle("ship", "orders", func(*message.Message) error { panic("ship: nil order") }, dr.Middleware)
		h.Handle("dlq-monitor", "orders.dlq", mon.Handle)
		h.Start()
		msg := message.NewMessage("0f8fad5b-d9cb-469f-a165-70867728950e", []byte(`{"order":1}`))
		for i := range 1500 {
			msg.Metadata[fmt.Sprintf("levee_a%04d", i)] = "x"
		}
		msg.Metadata[levee.KeyDedupID] = "order-1"
		h.Publish("orders", msg)
		synctest.Wait()
		letters, err := s.List(context.Background(), dlqops.Filter{})
		if err != nil || len(letters) != 1 {
			t.Fatalf("stored letters: %d, %v; want 1", len(letters), err)
		}
		dl := letters[0]
		if dl.Truncated == "" {
			t.Fatal("the letter was not cut: the test needs a cut")
		}
		for _, k := range append(dlq.FailureKeys(), levee.KeyDedupID, dlq.KeyReplayCount, dlq.KeyOriginalUUID) {
			switch k {
			case dlq.KeyConsumerGroup, dlq.KeyValidationErrors, dlq.KeyCompacted:
				continue // not written on this letter
			}
			if dl.Metadata[k] == "" {
				t.Errorf("stored letter lacks %s", k)
			}
		}
		if !strings.Contains(dl.Metadata[dlq.KeyStack], "goroutine") {
			t.Errorf("stored stack: %.60q, want the panic's", dl.Metadata[dlq.KeyStack])
		}
		if got := dl.Identity(); got != "order-1" {
			t.Errorf("the replay's identity: got %q, want order-1", got)
		}
	})
}
