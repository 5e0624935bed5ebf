package dlqops

import "github.com/levee-dev/levee/dlq"

// ClaimedParent returns the store ID of the letter that child's message
// says it replays (its dlq.KeyReplayOf), or "" when it says none. The
// claim is metadata the message carried: the replayer writes it, and so
// can any producer. VerifiedReplay tells whether the store backs it.
func ClaimedParent(child Record) string { return child.Metadata[dlq.KeyReplayOf] }

// VerifiedReplay reports whether child is the dead letter of a message that
// a replay of parent published, from what Levee itself recorded: child
// claims parent (ClaimedParent), and child's UUID is the UUID a replay of
// parent gave the message it published: parent.ReplayUUID (its last
// replay) or the ReplayUUID of one of events (parent's events, as
// Browser.Events returns them) whose action is EventReplayed or
// EventEdited. The replayer picks that UUID when it publishes, so a
// producer that writes dlq.KeyReplayOf on a message of its own is not
// verified. Neither is a true replay whose UUID the store no longer holds:
// one of a letter replayed again since (with Force, by a run that records
// no event, as the CLI's) or whose events were cut. It never errors.
func VerifiedReplay(parent Record, events []Event, child Record) bool {
	if ClaimedParent(child) != parent.ID || parent.ID == "" || child.UUID == "" {
		return false
	}
	if child.UUID == parent.ReplayUUID {
		return true
	}
	for _, ev := range events {
		if ev.LetterID == parent.ID && ev.ReplayUUID == child.UUID &&
			(ev.Action == EventReplayed || ev.Action == EventEdited) {
			return true
		}
	}
	return false
}
