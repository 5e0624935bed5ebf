package dlqops

import "time"

// Replay outcomes of ReplayItem.Outcome.
const (
	OutcomeReplayed    = "replayed"     // published and marked replayed
	OutcomeWouldReplay = "would_replay" // dry run: would be published
	OutcomeHeld        = "held"         // left dead with a reason
	OutcomeFailed      = "failed"       // publish failed
)

// ReplaySelection is what a replay run takes.
type ReplaySelection struct {
	// Filter selects letters by ids, group, topic, handler, DLQ topic or
	// FailedAt range; Filter.Limit bounds how many are handled. Its
	// Statuses are ignored: a run takes StatusNew letters, and with Force
	// StatusReplayed ones too. Archived letters are never replayed.
	Filter Filter
	// DryRun reports what would happen without claiming or publishing.
	DryRun bool
	// Force replays letters already replayed (sending them again). Max
	// replays still applies.
	Force bool
	// NewIdentity gives each replayed message a fresh dedup identity
	// (levee.KeyDedupID set to its new UUID), so a consumer behind the
	// dedup middleware runs it even if the original message succeeded.
	// Without it the replay keeps the letter's identity, and a replay of a
	// message that did succeed is acked without running (counted by the
	// consumer's levee.dedup.duplicates).
	NewIdentity bool
}

// ReplayItem is the result for one letter.
type ReplayItem struct {
	ID         string `json:"id"`
	Group      string `json:"group"`
	Topic      string `json:"topic"`
	Outcome    string `json:"outcome"`
	ReplayUUID string `json:"replay_uuid,omitempty"`
	Reason     string `json:"reason,omitempty"`
	// Err is the cause of a held or failed outcome (wrapping ErrMaxReplays,
	// ErrNoOriginalTopic, ErrTopicNotAllowed, ErrRevalidation or
	// ErrReplayPublish).
	Err error `json:"-"`
}

// MaxReportItems bounds ReplayReport.Items; the counts are always complete.
const MaxReportItems = 10000

// ReplayReport summarises a run.
type ReplayReport struct {
	DryRun    bool          `json:"dry_run"`
	Processed int           `json:"processed"`
	Replayed  int           `json:"replayed"` // or would be, in a dry run
	Held      int           `json:"held"`
	Failed    int           `json:"failed"`
	Elapsed   time.Duration `json:"elapsed_ns"`
	Items     []ReplayItem  `json:"items"`
	Truncated bool          `json:"truncated"` // Items stopped at MaxReportItems
}

// ReplayProgress is reported after every letter of a run.
type ReplayProgress struct {
	Processed int // letters handled so far
	Replayed  int // published (or, in a dry run, would be)
	Held      int // left dead with a reason
	Failed    int // publish failed
	Elapsed   time.Duration
}
