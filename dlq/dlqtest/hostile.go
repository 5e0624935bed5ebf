package dlqtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
)

// hostileLetters are dead letters a pipeline can produce: every transport
// hands a handler a UUID, payload and metadata as the producer wrote them,
// and dlq.Retrier routes them as they came.
func hostileLetters() map[string]*message.Message {
	big := bytes.Repeat([]byte{0, 0xff, 'x', '\n'}, 10<<20/4) // 10 MB with NUL and invalid UTF-8
	odd := func(uuid string, payload []byte) *message.Message {
		m := deadLetter(uuid, "", "orders", "h", "", "boom")
		m.Payload = payload
		return m
	}
	out := map[string]*message.Message{
		"empty UUID, no payload":   odd("", nil),
		"empty payload":            odd("e-1", []byte{}),
		"10 KB UUID with slashes":  odd(strings.Repeat("a/b/", 2560), []byte("x")),
		"UUID with NUL, bad UTF-8": odd("u\x00\xff\xfe", []byte("x")),
		"10 MB payload":            odd("big-1", big),
	}
	md := deadLetter("md-1", "p", "orders", "h", "", "boom")
	for k, v := range map[string]string{
		"nul\x00key": "nul\x00value", "\xff\xfe": "\xc3\x28", "a{b}:c*?[x]": "{}", "line\nkey": "v\r\nw",
		"ünïcödé ✓": "日本語", "": "empty key", "levee_x\x00": "\x00",
	} {
		md.Metadata[k] = v
	}
	md.Metadata["big"] = strings.Repeat("\x00\xff", 1<<19) // 1 MB, cut
	for i := range 3000 {
		md.Metadata[strings.Repeat("k", i%50)+string(rune('a'+i%26))+string(rune(0x4e00+i))] = "v"
	}
	out["hostile metadata"] = md
	names := deadLetter("n-1", "p", "top\x00ic/\xff{x}:*\n", strings.Repeat("hä\x00\xff", 1<<18), "g\x00\xfe",
		strings.Repeat("err\x00\xff ", 1<<17))
	names.Metadata[dlq.KeyErrorType] = "*x\x00\xff"
	names.Metadata[dlq.KeyFingerprint] = "\x00\xff not hex"
	names.Metadata[dlq.KeyOriginalUUID] = "o\x00\xff"
	out["hostile topic, handler, group and error"] = names
	return out
}

// hostileLetterIsKept is the HostileLetterIsKept subtest of Run: whatever
// the pipeline can produce, the store accepts, and gives back the payload
// byte for byte and the metadata dlqops.NewRecord bounded, key for key.
func hostileLetterIsKept(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t)
	if _, err := s.Get(ctx, "dl-\x00\xff"); !errors.Is(err, dlqops.ErrNotFound) {
		t.Errorf("Get of an ID with NUL and invalid UTF-8: got %v want ErrNotFound", err)
	}
	for name, msg := range hostileLetters() {
		t.Run(name, func(t *testing.T) {
			rec := dlqops.NewRecord(msg, "orders.dlq", Base)
			if n, err := s.Add(ctx, rec); err != nil || n != 1 {
				t.Fatalf("Add: got %d, %v want 1, nil", n, err)
			}
			got, err := s.Get(ctx, rec.ID)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if !bytes.Equal(got.Payload, msg.Payload) {
				t.Errorf("payload: got %d bytes want %d, changed", len(got.Payload), len(msg.Payload))
			}
			if !maps.Equal(got.Metadata, rec.Metadata) {
				t.Errorf("metadata: got %d keys want the %d NewRecord kept, or values changed", len(got.Metadata), len(rec.Metadata))
			}
			if got.Truncated != rec.Truncated || got.Attempts != rec.Attempts {
				t.Errorf("truncated %q, attempts %d; want %q, %d", got.Truncated, got.Attempts, rec.Truncated, rec.Attempts)
			}
			f := dlqops.Filter{Group: rec.Fingerprint, Topic: rec.OriginalTopic, Handler: rec.Handler, DLQTopic: rec.DLQTopic}
			listed, err := s.List(ctx, f)
			if err != nil || !slices.Contains(IDs(listed), rec.ID) {
				t.Errorf("List(%+v): got %v, %v; want %s among them", f, IDs(listed), err, rec.ID)
			}
			for _, by := range []dlqops.GroupBy{dlqops.GroupByFingerprint, dlqops.GroupByTopic, dlqops.GroupByHandler} {
				gs, err := s.Groups(ctx, dlqops.GroupQuery{By: by, Filter: dlqops.Filter{Topic: rec.OriginalTopic, Handler: rec.Handler}})
				if err != nil || len(gs) == 0 {
					t.Errorf("Groups by %s of its topic and handler: got %d groups, %v; want the letter's", by, len(gs), err)
				}
			}
			browsed(t, s, rec)
		})
	}
}

// browsed checks that a dlqops.Browser finds rec by its own names: a page
// filtered by its topic, handler and class, and its handler's hourly count.
func browsed(t *testing.T, s dlqops.Store, rec dlqops.Record) {
	t.Helper()
	b, ok := s.(dlqops.Browser)
	if !ok {
		return
	}
	ctx := context.Background()
	q := dlqops.PageQuery{Filter: dlqops.Filter{Topic: rec.OriginalTopic, Handler: rec.Handler}, Class: rec.ErrorClass}
	page, err := b.Page(ctx, q)
	if err != nil || !slices.Contains(IDs(page.Letters), rec.ID) {
		t.Errorf("Page by its topic, handler and class: got %v, %v; want %s among them", IDs(page.Letters), err, rec.ID)
	}
	hq := dlqops.HourlyQuery{By: dlqops.GroupByHandler, Keys: []string{rec.Handler}, Since: rec.FailedAt, Hours: 1}
	hours, err := b.Hourly(ctx, hq)
	if err != nil || len(hours[rec.Handler]) != 1 || hours[rec.Handler][0] < 1 {
		t.Errorf("Hourly of its handler: got %v, %v; want at least 1 in the hour", hours[rec.Handler], err)
	}
}

// replayKeepsTheIdentity is the ReplayKeepsTheIdentity subtest of Run: a
// replay of a letter whose message was identified by its UUID carries that
// UUID byte for byte (as levee_dedup_id and levee_original_uuid), whatever
// bytes it holds, so a deduplicating consumer recognises the message.
func replayKeepsTheIdentity(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t)
	for i, uuid := range []string{"u\x00nul", "u\xff\xfe", " padded ", "ünï ✓", "plain-1"} {
		msg := deadLetter(uuid, fmt.Sprint("p", i), "orders", "h", "", "boom")
		msg.Metadata[dlq.KeyOriginalUUID] = uuid // as dlq.Retrier writes it
		rec := dlqops.NewRecord(msg, "orders.dlq", Base)
		if _, err := s.Add(ctx, rec); err != nil {
			t.Fatalf("%q: Add: %v", uuid, err)
		}
		got, err := s.Get(ctx, rec.ID)
		if err != nil {
			t.Fatalf("%q: Get: %v", uuid, err)
		}
		md := dlqops.ReplayMessage(got, "new-uuid", Base).Metadata
		orig := md[dlq.KeyOriginalUUID]
		delete(md, dlq.KeyOriginalUUID)
		dedupID := dlqops.Record{Metadata: md}.Identity() // the replay's levee_dedup_id alone
		if got.Identity() != uuid || dedupID != uuid || orig != uuid {
			t.Errorf("%q: identity %q, replay's dedup id %q and original uuid %q; want the UUID as it was",
				uuid, got.Identity(), dedupID, orig)
		}
	}
}
