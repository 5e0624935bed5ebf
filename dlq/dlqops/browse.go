package dlqops

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/levee-dev/levee/internal/trunc"
)

// Browser is the optional interface of a Store that a console pages
// through at a million letters: newest-first keyset pages with class and
// error-text search, per-hour counts of groups, and a log of what was done
// to each letter (its lineage events). MemStore, adapters/pgstore and
// adapters/redisstore implement it; a caller asserts it
// (store.(dlqops.Browser)) and falls back to List when it is missing.
// Implementations are safe for concurrent use; errors wrap the Store
// errors (ErrStore, ErrInvalidQuery).
type Browser interface {
	Store
	// Page returns one page of the letters matching q, newest FailedAt
	// first (ties by ID, descending), and the cursor of the next page.
	Page(ctx context.Context, q PageQuery) (LetterPage, error)
	// Hourly counts the letters of each key of q.Keys (grouped by q.By)
	// per hour from q.Since (truncated to the hour) for q.Hours hours; the
	// result maps each key to q.Hours counts.
	Hourly(ctx context.Context, q HourlyQuery) (map[string][]int, error)
	// AddEvent appends ev to its letter's event log. The letter need not
	// exist any more; a store may drop the events of a pruned letter.
	AddEvent(ctx context.Context, ev Event) error
	// Events returns the newest limit events of a letter, oldest first
	// (0 < limit <= MaxEvents).
	Events(ctx context.Context, letterID string, limit int) ([]Event, error)
}

// Paging bounds.
const (
	// DefaultPageSize is a page's size when PageQuery.Filter.Limit is 0.
	DefaultPageSize = 50
	// MaxPageSize bounds PageQuery.Filter.Limit.
	MaxPageSize = 500
	// MaxHours bounds HourlyQuery.Hours (a week).
	MaxHours = 168
	// MaxHourlyKeys bounds HourlyQuery.Keys.
	MaxHourlyKeys = 500
	// MaxEvents bounds what a store keeps and returns per letter.
	MaxEvents = 500
	// MaxSearchText bounds PageQuery.Text in bytes.
	MaxSearchText = 256
)

// PageQuery asks for one page of letters, newest first.
type PageQuery struct {
	// Filter selects letters; its Limit is the page size (0 means
	// DefaultPageSize, at most MaxPageSize).
	Filter Filter
	// Class selects an error class (Record.ErrorClass); "" any.
	Class string
	// Text selects letters whose Error contains it, ignoring ASCII case;
	// "" any.
	Text string
	// Before, when set, returns only letters before this position
	// (FailedAt, then ID) in newest-first order: the Next of the previous
	// page.
	Before *Cursor
}

// Validate checks q; errors wrap ErrInvalidQuery.
func (q PageQuery) Validate() error {
	if err := q.Filter.Validate(); err != nil {
		return err
	}
	switch {
	case q.Filter.Limit > MaxPageSize:
		return fmt.Errorf("%w: page size %d over %d", ErrInvalidQuery, q.Filter.Limit, MaxPageSize)
	case len(q.Text) > MaxSearchText:
		return fmt.Errorf("%w: search text longer than %d bytes", ErrInvalidQuery, MaxSearchText)
	}
	return nil
}

// Size returns the page size q asks for.
func (q PageQuery) Size() int {
	if q.Filter.Limit == 0 {
		return DefaultPageSize
	}
	return q.Filter.Limit
}

// Match reports whether dl matches q: its Filter, Class and Text, and lies
// before q.Before. A store that filters in its own process uses it.
func (q PageQuery) Match(dl *Record) bool {
	if !q.Filter.Match(dl) || q.Class != "" && dl.ErrorClass != q.Class {
		return false
	}
	if q.Text != "" && !containsFold(dl.Error, q.Text) {
		return false
	}
	if b := q.Before; b != nil && !letterLess(*dl, Record{FailedAt: b.At, ID: b.ID}) {
		return false
	}
	return true
}

// Match reports whether dl matches every set field of f (Limit aside).
func (f Filter) Match(dl *Record) bool {
	if len(f.IDs) > 0 && !slices.Contains(f.IDs, dl.ID) {
		return false
	}
	return matches(dl, f, nil)
}

// containsFold reports whether s contains sub, ignoring ASCII case (what
// PostgreSQL's ILIKE does for ASCII).
func containsFold(s, sub string) bool {
	return strings.Contains(asciiLower(s), asciiLower(sub))
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// LetterPage is one page of letters.
type LetterPage struct {
	// Letters are newest first.
	Letters []Record
	// Next is the PageQuery.Before of the next page; nil on the last page.
	Next *Cursor
	// Partial is set when the store stopped walking its index before the
	// page was full (a search that matches few letters of a large index):
	// Next continues the walk. PostgreSQL never sets it.
	Partial bool
}

// HourlyQuery asks for per-hour counts.
type HourlyQuery struct {
	// By is the grouping of Keys; "" means GroupByFingerprint.
	By GroupBy
	// Keys are the group keys counted (at most MaxHourlyKeys).
	Keys []string
	// Since starts the first hour; it is truncated to the hour.
	Since time.Time
	// Hours is how many hours are counted (1..MaxHours).
	Hours int
}

// Validate checks q; errors wrap ErrInvalidQuery.
func (q HourlyQuery) Validate() error {
	if _, err := ParseGroupBy(string(q.By)); err != nil {
		return err
	}
	switch {
	case q.Hours < 1 || q.Hours > MaxHours:
		return fmt.Errorf("%w: hours %d not in 1..%d", ErrInvalidQuery, q.Hours, MaxHours)
	case len(q.Keys) > MaxHourlyKeys:
		return fmt.Errorf("%w: %d keys over %d", ErrInvalidQuery, len(q.Keys), MaxHourlyKeys)
	case q.Since.IsZero():
		return fmt.Errorf("%w: hourly counts without a start", ErrInvalidQuery)
	}
	return nil
}

// Start returns the start of the first hour.
func (q HourlyQuery) Start() time.Time { return q.Since.UTC().Truncate(time.Hour) }

// Hour returns the index of the hour holding t, or -1 outside the range.
func (q HourlyQuery) Hour(t time.Time) int {
	d := t.Sub(q.Start())
	if d < 0 {
		return -1
	}
	if h := int(d / time.Hour); h < q.Hours {
		return h
	}
	return -1
}

// Event is one entry of a letter's event log: an operator's action
// (archive, restore, replay, edit) or a replay's outcome, as the console
// and the canary replay record them.
type Event struct {
	// LetterID is the letter the event is about.
	LetterID string `json:"letter_id"`
	// At is when it happened.
	At time.Time `json:"at"`
	// Actor is who did it (a console user, or the replayer's owner).
	Actor string `json:"actor"`
	// Action is one of the Event* constants.
	Action string `json:"action"`
	// Detail says more (a wave number, a reason, the re-dead-letter's ID),
	// bounded to MaxEventDetail bytes by the stores.
	Detail string `json:"detail,omitempty"`
	// ReplayUUID is the UUID of the message a replay published.
	ReplayUUID string `json:"replay_uuid,omitempty"`
}

// MaxEventDetail bounds Event.Detail and Event.Actor in bytes.
const MaxEventDetail = 1024

// Event actions.
const (
	EventArchived     = "archived"
	EventRestored     = "restored"
	EventReplayed     = "replayed"      // published to its original topic
	EventEdited       = "edited"        // published with an edited payload
	EventHeld         = "held"          // a replay left it dead
	EventFailedAgain  = "failed_again"  // its replay was dead-lettered again
	EventProcessed    = "processed"     // its replay was not dead-lettered within the wait
	EventCanaryHalted = "canary_halted" // a canary replay stopped before it
)

// Validate checks ev; errors wrap ErrInvalidQuery.
func (ev Event) Validate() error {
	switch {
	case ev.LetterID == "":
		return fmt.Errorf("%w: event without a letter", ErrInvalidQuery)
	case ev.Action == "":
		return fmt.Errorf("%w: event without an action", ErrInvalidQuery)
	case ev.At.IsZero():
		return fmt.Errorf("%w: event without a time", ErrInvalidQuery)
	}
	return nil
}

// BoundEvent cuts ev's strings to their bounds, as stores keep them.
func BoundEvent(ev Event) Event {
	ev.Actor = cleanName(ev.Actor)
	ev.Action = cleanName(ev.Action)
	ev.ReplayUUID = cleanName(ev.ReplayUUID)
	if len(ev.Detail) > MaxEventDetail {
		ev.Detail = trunc.String(ev.Detail, MaxEventDetail)
	}
	ev.At = ev.At.UTC().Truncate(time.Microsecond)
	return ev
}
