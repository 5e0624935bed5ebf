package dlqops

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/levee-dev/levee/dlq"
)

// Status is the state of a stored dead letter.
type Status string

// Statuses. A dead letter is recorded as StatusNew; a successful replay
// makes it StatusReplayed; an operator can archive it (StatusArchived) to
// take it out of replays and gauges without deleting it.
const (
	StatusNew      Status = "new"
	StatusReplayed Status = "replayed"
	StatusArchived Status = "archived"
)

// Valid reports whether s is one of the three statuses.
func (s Status) Valid() bool {
	return s == StatusNew || s == StatusReplayed || s == StatusArchived
}

// ParseStatus parses a status name; it returns an error wrapping
// ErrInvalidQuery for anything else.
func ParseStatus(s string) (Status, error) {
	st := Status(s)
	if !st.Valid() {
		return "", fmt.Errorf("%w: unknown status %q (want new, replayed or archived)", ErrInvalidQuery, s)
	}
	return st, nil
}

// UnknownGroup is the group of dead letters whose fingerprint is missing or
// garbage (written by an older version, another tool, or by hand): the
// same value as dlq.UnknownFingerprint.
const UnknownGroup = dlq.UnknownFingerprint

// Record is one recorded dead letter: the message as it arrived on the
// DLQ topic, with its Levee failure keys parsed defensively.
type Record struct {
	// ID identifies the record: "dl-" and 32 hex digits of a SHA-256 over
	// the consumer (the DLQ topic, original topic, handler and consumer
	// group the letter names), the message UUID, and the payload and
	// metadata a replay would publish (failure keys, trace context and
	// per-delivery transport keys left out). A redelivery of the same dead
	// letter, or a second dead-lettering of the message by the same
	// consumer, yields the same ID (Add keeps the first); two handlers or
	// groups failing one message yield two letters; a producer reusing
	// another message's UUID cannot take its ID. IDs are opaque: letters
	// stored by older versions keep theirs (the message UUID).
	ID string `json:"id"`
	// UUID is the dead letter's message UUID as received ("" if none).
	UUID string `json:"uuid"`
	// OriginalUUID is the UUID of the first message of the lineage
	// (dlq.KeyOriginalUUID), or UUID when absent.
	OriginalUUID string `json:"original_uuid"`
	// DLQTopic is the topic the monitor consumed it from.
	DLQTopic string `json:"dlq_topic"`
	// OriginalTopic is the topic the failed message came from
	// (dlq.KeyOriginalTopic); "" when missing, which blocks a replay.
	OriginalTopic string `json:"original_topic"`
	// Handler is the failing handler (dlq.KeyHandler); "" when missing.
	Handler string `json:"handler"`
	// ConsumerGroup is dlq.KeyConsumerGroup; "" when missing.
	ConsumerGroup string `json:"consumer_group,omitempty"`
	// Fingerprint is the failure group (dlq.KeyFingerprint) or UnknownGroup.
	Fingerprint string `json:"fingerprint"`
	// ErrorClass, ErrorType and Error are dlq.KeyErrorClass, dlq.KeyErrorType and
	// dlq.KeyError, bounded in length.
	ErrorClass string `json:"error_class"`
	ErrorType  string `json:"error_type"`
	Error      string `json:"error"`
	// Attempts is dlq.KeyAttempts (0 when missing or garbage).
	Attempts int `json:"attempts"`
	// ReplayCount is how often this message was already replayed
	// (dlq.KeyReplayCount; 0 when missing or garbage).
	ReplayCount int `json:"replay_count"`
	// FailedAt is dlq.KeyLastFailureAt, or ReceivedAt when missing or garbage.
	// Groups, time ranges and retention use it.
	FailedAt time.Time `json:"failed_at"`
	// ReceivedAt is when the monitor recorded it.
	ReceivedAt time.Time `json:"received_at"`
	// Metadata is every metadata key of the dead letter, as received,
	// within the caps of BoundRecord (MaxStoredMetadataKeys and the rest).
	Metadata map[string]string `json:"metadata"`
	// Truncated says what BoundRecord cut from Metadata to fit the caps
	// ("" when the letter was kept whole).
	Truncated string `json:"truncated,omitempty"`
	// Payload is the payload byte for byte.
	Payload []byte `json:"payload"`
	// Status is new, replayed or archived.
	Status Status `json:"status"`
	// Reason says why the last replay attempt left it dead (max replays,
	// missing original topic, failed re-validation, publish error).
	Reason string `json:"reason,omitempty"`
	// ReplayedAt and ReplayUUID describe the replay that made it
	// StatusReplayed (zero otherwise).
	ReplayedAt time.Time `json:"replayed_at,omitzero"`
	ReplayUUID string    `json:"replay_uuid,omitempty"`
}

// GroupBy selects the grouping key of Groups.
type GroupBy string

// Grouping keys. GroupByFingerprint is the default.
const (
	GroupByFingerprint GroupBy = "fingerprint"
	GroupByTopic       GroupBy = "topic"
	GroupByHandler     GroupBy = "handler"
)

// ParseGroupBy parses "fingerprint" (or ""), "topic" or "handler".
func ParseGroupBy(s string) (GroupBy, error) {
	switch GroupBy(s) {
	case "", GroupByFingerprint:
		return GroupByFingerprint, nil
	case GroupByTopic, GroupByHandler:
		return GroupBy(s), nil
	}
	return "", fmt.Errorf("%w: unknown grouping %q (want fingerprint, topic or handler)", ErrInvalidQuery, s)
}

// Group summarises the dead letters sharing one key.
type Group struct {
	// Key is the fingerprint, original topic or handler ("" kept as is for
	// topic and handler).
	Key string `json:"key"`
	// By is the grouping used.
	By GroupBy `json:"by"`
	// Count is every dead letter of the group, any status; New, Replayed
	// and Archived split it by status.
	Count    int `json:"count"`
	New      int `json:"new"`
	Replayed int `json:"replayed"`
	Archived int `json:"archived"`
	// InWindow is how many arrived (FailedAt) at or after the window start
	// of the query.
	InWindow int `json:"in_window"`
	// FirstSeen and LastSeen are the oldest and newest FailedAt.
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	// OldestNew is the oldest FailedAt among StatusNew letters (zero when
	// none is new): the age gauge and alert use it.
	OldestNew time.Time `json:"oldest_new,omitzero"`
	// Topics and Handlers are the distinct original topics and handlers,
	// sorted.
	Topics   []string `json:"topics"`
	Handlers []string `json:"handlers"`
	// SampleError is the error of the newest letter of the group.
	SampleError string `json:"sample_error"`
	// ErrorClass is the class of that newest letter.
	ErrorClass string `json:"error_class"`
}

// Filter selects dead letters. Zero fields do not filter; all set fields
// must match.
type Filter struct {
	// IDs selects these record IDs.
	IDs []string
	// Group selects a fingerprint (UnknownGroup included).
	Group string
	// Topic selects an original topic.
	Topic string
	// Handler selects a handler.
	Handler string
	// DLQTopic selects the DLQ topic it was consumed from.
	DLQTopic string
	// Statuses selects statuses; empty means any.
	Statuses []Status
	// Since and Until bound FailedAt: Since <= FailedAt < Until.
	Since, Until time.Time
	// Limit bounds the result; 0 means no bound.
	Limit int
}

// Validate checks the filter: statuses must be valid, Limit not negative,
// Until after Since when both are set. Errors wrap ErrInvalidQuery.
func (f Filter) Validate() error {
	for _, s := range f.Statuses {
		if !s.Valid() {
			return fmt.Errorf("%w: unknown status %q", ErrInvalidQuery, s)
		}
	}
	if f.Limit < 0 {
		return fmt.Errorf("%w: negative limit %d", ErrInvalidQuery, f.Limit)
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		return fmt.Errorf("%w: until %s is not after since %s", ErrInvalidQuery, f.Until, f.Since)
	}
	return nil
}

// Cursor is a position in the store's replay order (FailedAt, then ID).
type Cursor struct {
	At time.Time
	ID string
}

// ClaimRequest claims dead letters for a replay.
type ClaimRequest struct {
	// Filter selects candidates. Statuses empty means StatusNew only.
	Filter Filter
	// After, when set, claims only letters after this position, so a run
	// walks the selection once (letters it leaves dead are not claimed
	// again in the same run).
	After *Cursor
	// Owner names the claimant; Complete and Release must present it.
	Owner string
	// Now is the claim time; Lease is how long the claim holds. A claim
	// whose lease ended (a crashed replayer) can be claimed again.
	Now   time.Time
	Lease time.Duration
	// Limit is the most letters claimed at once (> 0).
	Limit int
}

// Validate checks the request; errors wrap ErrInvalidQuery.
func (r ClaimRequest) Validate() error {
	if err := r.Filter.Validate(); err != nil {
		return err
	}
	switch {
	case r.Owner == "":
		return fmt.Errorf("%w: claim without owner", ErrInvalidQuery)
	case r.Lease <= 0:
		return fmt.Errorf("%w: claim lease %s must be positive", ErrInvalidQuery, r.Lease)
	case r.Limit <= 0:
		return fmt.Errorf("%w: claim limit %d must be positive", ErrInvalidQuery, r.Limit)
	case r.Now.IsZero():
		return fmt.Errorf("%w: claim without a time", ErrInvalidQuery)
	}
	return nil
}

// Retention bounds what a store keeps. Zero fields do not bound.
type Retention struct {
	// MaxAge deletes letters whose FailedAt is older than now-MaxAge.
	MaxAge time.Duration
	// MaxCount keeps at most this many letters, deleting the oldest.
	MaxCount int
}

// Renewer is implemented by a Store whose claims' leases can be extended
// (the memory, Redis and PostgreSQL stores do). A replay renews the leases
// of the letters it claimed while it handles them, so a publish that
// outlasts the lease (a stalled broker: RabbitMQ blocks publishers during a
// memory alarm) keeps its letters, and another replay does not claim and
// publish them too. A store without it keeps a claim for its lease only.
type Renewer interface {
	// Renew sets the lease end of each of ids that owner still holds to
	// until (on the claimer's clock, as ClaimRequest.Now), whether or not
	// its lease ended meanwhile, and returns how many it renewed. A letter
	// that another owner claimed, that was marked or released, or that is
	// not stored, is left as it is.
	Renew(ctx context.Context, owner string, until time.Time, ids ...string) (int, error)
}

// Store records dead letters. Implementations are safe for concurrent use
// by several monitors and replayers (the PostgreSQL store across
// processes). Every error wraps ErrStore (unreachable, failed query) or
// ErrNotFound, ErrClaimLost or ErrInvalidQuery.
type Store interface {
	// Add records letters; a letter whose ID is already stored is ignored
	// (idempotent on redelivery). It returns how many were new.
	Add(ctx context.Context, letters ...Record) (int, error)
	// Get returns one letter, or an error wrapping ErrNotFound.
	Get(ctx context.Context, id string) (Record, error)
	// List returns the letters matching f, oldest FailedAt first.
	List(ctx context.Context, f Filter) ([]Record, error)
	// Groups summarises the letters by q.By in q.Order (largest Count
	// first by default), skipping q.Offset groups and returning at most
	// q.Limit (0: every group). The store orders and cuts the groups
	// itself, so a page costs what it shows (PageGroups does it for a
	// store that has every group at hand).
	Groups(ctx context.Context, q GroupQuery) ([]Group, error)
	// Claim atomically claims up to r.Limit unclaimed (or lease-expired)
	// letters in replay order; two concurrent claims never return the
	// same letter while its lease holds.
	Claim(ctx context.Context, r ClaimRequest) ([]Record, error)
	// MarkReplayed ends a claim with a successful replay: the letter
	// becomes StatusReplayed. ErrClaimLost if owner no longer holds it.
	MarkReplayed(ctx context.Context, id, owner, replayUUID string, at time.Time) error
	// Release ends a claim leaving the letter's status unchanged, with
	// reason recorded. ErrClaimLost if owner no longer holds it.
	Release(ctx context.Context, id, owner, reason string) error
	// SetStatus sets the status of the letters matching f and returns how
	// many changed. Claimed letters are skipped.
	SetStatus(ctx context.Context, f Filter, s Status) (int, error)
	// Prune applies the retention at time now and returns how many letters
	// it deleted.
	Prune(ctx context.Context, r Retention, now time.Time) (int, error)
}

// Store errors.
var (
	// ErrStore is wrapped by errors of the store's backend (unreachable,
	// failed query). The Monitor Nacks on it.
	ErrStore = errors.New("levee/dlqops: dead-letter store failed")
	// ErrNotFound is returned by Get for an unknown ID.
	ErrNotFound = errors.New("levee/dlqops: dead letter not found")
	// ErrClaimLost is returned when a claim ended (lease expired and taken
	// by another replayer) before the owner completed it.
	ErrClaimLost = errors.New("levee/dlqops: replay claim lost")
	// ErrInvalidQuery is wrapped for invalid filters and requests.
	ErrInvalidQuery = errors.New("levee/dlqops: invalid store query")
)
