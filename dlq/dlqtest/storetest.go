package dlqtest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
)

// Base is the reference time of the suite, at microsecond precision (what
// PostgreSQL keeps).
var Base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// Letter returns a dead letter for tests: id, group (fingerprint), original
// topic and handler, failed at Base+offset.
func Letter(id, group, topic, handler string, offset time.Duration) dlqops.Record {
	return dlqops.Record{
		ID: id, UUID: id, OriginalUUID: id, DLQTopic: topic + ".dlq", OriginalTopic: topic, Handler: handler,
		Fingerprint: group, ErrorClass: "permanent", ErrorType: "*errors.errorString",
		Error: "failure of " + id, Attempts: 3, FailedAt: Base.Add(offset), ReceivedAt: Base.Add(offset + time.Second),
		Metadata: map[string]string{dlq.KeyFingerprint: group, dlq.KeyOriginalTopic: topic, "k": "v " + id},
		Payload:  []byte(`{"id":"` + id + `"}`), Status: dlqops.StatusNew,
	}
}

// NewStore returns an empty store for one subtest; the suite calls it once
// per subtest.
type NewStore func(t *testing.T) dlqops.Store

// Run runs the conformance suite: independent subtests, each against a
// fresh store from newStore (the shape of watermill's pubsub/tests suite),
// grouped by concept in records.go, queries.go, claims.go and retention.go.
func Run(t *testing.T, newStore NewStore) {
	for _, tt := range []struct {
		name string
		run  func(*testing.T, NewStore)
	}{
		{"AddIsIdempotent", addIsIdempotent},
		{"IdentityIncludesConsumer", func(t *testing.T, newStore NewStore) { identityIncludesConsumer(t, newStore(t)) }},
		{"RoundTrip", roundTrip},
		{"OversizedLetterIsBounded", oversizedLetterIsBounded},
		{"HostileLetterIsKept", hostileLetterIsKept},
		{"ReplayKeepsTheIdentity", replayKeepsTheIdentity},
		{"PanicLetterKeepsStack", panicLetterKeepsStack},
		{"ListFilters", listFilters},
		{"Groups", groups},
		{"GroupsPage", groupsPage},
		{"ClaimLease", claimLease},
		{"RenewLease", renewLease},
		{"CursorWalksTiesBytewise", cursorWalksTiesBytewise},
		{"SetStatusSkipsClaimed", setStatusSkipsClaimed},
		{"Prune", prune},
		{"PreviewPruneMatchesPrune", previewPruneMatchesPrune},
		{"ConcurrentReplayersReplayOncePerRun", func(t *testing.T, newStore NewStore) { replayersOncePerRun(t, newStore(t)) }},
		{"ConcurrentClaimsAreExclusive", concurrentClaimsAreExclusive},
		{"BrowserPage", browserPage},
		{"BrowserHourly", browserHourly},
		{"BrowserEvents", browserEvents},
		{"CanaryHaltsAndFinishes", func(t *testing.T, newStore NewStore) { canaryHaltsAndFinishes(t, newStore(t)) }},
	} {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, newStore) })
	}
}

// deadLetter builds a dead letter message as dlq.Retrier writes it: uuid,
// payload and the consumer's keys.
func deadLetter(uuid, payload, topic, handler, group, errText string) *message.Message {
	m := message.NewMessage(uuid, []byte(payload))
	m.Metadata[dlq.KeyOriginalTopic] = topic
	m.Metadata[dlq.KeyHandler] = handler
	if group != "" {
		m.Metadata[dlq.KeyConsumerGroup] = group
	}
	m.Metadata[dlq.KeyError] = errText
	m.Metadata[dlq.KeyErrorClass] = "permanent"
	m.Metadata[dlq.KeyFingerprint] = dlq.Fingerprint("*errors.errorString", errText)
	m.Metadata[dlq.KeyLastFailureAt] = dlq.FormatTime(Base)
	m.Metadata[dlq.KeyDLQTopic] = topic + ".dlq"
	m.Metadata["customer"] = "c-1"
	return m
}

// identityIncludesConsumer: a dead letter's ID (dlqops.NewRecord) includes the
// consumer, so two handlers or groups failing one message keep two letters,
// a forged letter reusing the UUID (arriving first) hides none of them, and
// a redelivery of a letter is still recognised as the same letter.
func identityIncludesConsumer(t *testing.T, s dlqops.Store) {
	ctx := context.Background()
	const uuid = "0f8fad5b-d9cb-469f-a165-70867728950e"
	rec := func(m *message.Message, dlqTopic string) dlqops.Record { return dlqops.NewRecord(m, dlqTopic, Base) }
	victim := deadLetter(uuid, `{"order":1}`, "orders", "ship", "", "warehouse offline")
	// what a producer can publish straight onto the DLQ topic, first
	forgedOtherConsumer := deadLetter(uuid, `{"order":1}`, "spam", "spam-handler", "", "x")
	forgedPayload := deadLetter(uuid, `{"order":"forged"}`, "orders", "ship", "", "warehouse offline")
	forgedLineage := deadLetter(uuid, `{"order":1}`, "orders", "ship", "", "warehouse offline")
	forgedLineage.Metadata[dlq.KeyReplayCount] = "99"
	otherHandler := deadLetter(uuid, `{"order":1}`, "orders", "bill", "", "ledger closed")
	otherGroup := deadLetter(uuid, `{"order":1}`, "orders", "ship", "audit", "warehouse offline")
	// the victim's letter delivered again: transport keys and a new trace
	// context differ; and dead-lettered again by the same consumer after a
	// lost ack: the failure keys differ
	redelivered := victim.Copy()
	redelivered.Metadata[dlq.KeyDeliveryCount] = "2"
	redelivered.Metadata["_watermill_amqp_redelivered"] = "true"
	redelivered.Metadata["traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	again := victim.Copy()
	again.Metadata[dlq.KeyError] = "warehouse offline again"
	again.Metadata[dlq.KeyAttempts] = "5"
	again.Metadata[dlq.KeyLastFailureAt] = dlq.FormatTime(Base.Add(time.Minute))

	steps := []struct {
		name     string
		dl       dlqops.Record
		wantNew  int
		sameAsID string
	}{
		{name: "forged, other consumer", dl: rec(forgedOtherConsumer, "orders.dlq"), wantNew: 1},
		{name: "forged, other payload", dl: rec(forgedPayload, "orders.dlq"), wantNew: 1},
		{name: "forged, other lineage", dl: rec(forgedLineage, "orders.dlq"), wantNew: 1},
		{name: "victim", dl: rec(victim, "orders.dlq"), wantNew: 1},
		{name: "other handler", dl: rec(otherHandler, "orders.dlq"), wantNew: 1},
		{name: "other group", dl: rec(otherGroup, "orders.dlq"), wantNew: 1},
		{name: "other DLQ topic", dl: rec(victim, "all.dlq"), wantNew: 1},
		{name: "redelivered", dl: rec(redelivered, "orders.dlq"), wantNew: 0, sameAsID: rec(victim, "orders.dlq").ID},
		{name: "dead-lettered again", dl: rec(again, "orders.dlq"), wantNew: 0, sameAsID: rec(victim, "orders.dlq").ID},
	}
	for _, st := range steps {
		n, err := s.Add(ctx, st.dl)
		if err != nil || n != st.wantNew {
			t.Errorf("%s: Add got %d, %v want %d", st.name, n, err, st.wantNew)
		}
		if st.sameAsID != "" && st.dl.ID != st.sameAsID {
			t.Errorf("%s: id %s want the victim's %s", st.name, st.dl.ID, st.sameAsID)
		}
	}
	all, err := s.List(ctx, dlqops.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 7 {
		t.Fatalf("stored %d letters want 7 (3 forged, victim, other handler, other group, other DLQ topic): %v", len(all), IDs(all))
	}
	got, err := s.Get(ctx, rec(victim, "orders.dlq").ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.UUID != uuid || got.Handler != "ship" || got.OriginalTopic != "orders" || string(got.Payload) != `{"order":1}` ||
		got.Error != "warehouse offline" || got.ReplayCount != 0 {
		t.Errorf("victim's letter: got %+v", got)
	}
	byHandler, err := s.List(ctx, dlqops.Filter{Handler: "bill"})
	if err != nil || len(byHandler) != 1 || byHandler[0].Error != "ledger closed" {
		t.Errorf("other handler's letter: got %v, %v", byHandler, err)
	}
}

func mustAdd(t *testing.T, s dlqops.Store, letters ...dlqops.Record) {
	t.Helper()
	if _, err := s.Add(context.Background(), letters...); err != nil {
		t.Fatal(err)
	}
}

func claimAndMark(t *testing.T, s dlqops.Store, id string) {
	t.Helper()
	ctx := context.Background()
	got, err := s.Claim(ctx, dlqops.ClaimRequest{Filter: dlqops.Filter{IDs: []string{id}}, Owner: "m", Now: Base, Lease: time.Minute, Limit: 1})
	if err != nil || len(got) != 1 {
		t.Fatalf("claim %s: %v %v", id, IDs(got), err)
	}
	if err := s.MarkReplayed(ctx, id, "m", "r", Base); err != nil {
		t.Fatal(err)
	}
}

// IDs returns the IDs of letters in order.
func IDs(letters []dlqops.Record) []string {
	var out []string
	for _, dl := range letters {
		out = append(out, dl.ID)
	}
	return out
}

// EqualGroup compares two groups field by field (times with Equal).
func EqualGroup(got, want dlqops.Group) error {
	if got.Key != want.Key || got.By != want.By || got.Count != want.Count || got.New != want.New ||
		got.Replayed != want.Replayed || got.Archived != want.Archived || got.InWindow != want.InWindow ||
		!got.FirstSeen.Equal(want.FirstSeen) || !got.LastSeen.Equal(want.LastSeen) || !got.OldestNew.Equal(want.OldestNew) ||
		!slices.Equal(got.Topics, want.Topics) || !slices.Equal(got.Handlers, want.Handlers) ||
		got.SampleError != want.SampleError || got.ErrorClass != want.ErrorClass {
		return fmt.Errorf("group:\n got %+v\nwant %+v", got, want)
	}
	return nil
}
