package dlqops

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/dlq"
)

// ErrAlreadySucceeded holds back a letter whose message already succeeded:
// its dedup identity is done in the store WithReplayDoneCheck asks, so a
// consumer behind the dedup middleware would drop the replay. Replay it
// with ReplaySelection.NewIdentity (`--new-identity`) to run it again.
var ErrAlreadySucceeded = errors.New("levee/dlqops: the message already succeeded (its dedup identity is done)")

// ErrDoneCheck holds back a letter whose dedup identity could not be
// checked (the store failed): it is not published blind.
var ErrDoneCheck = errors.New("levee/dlqops: dedup check failed")

// WithReplayDoneCheck makes NewReplayer's runs ask done, before each
// publish, whether the letter's dedup identity is done for its handler
// (Record.Handler; a dedup store's IsDone of dedup.StoreKey(handler,
// identity) when the consumers use their handler name as namespace, as
// config does): such a letter is held with ErrAlreadySucceeded, in the
// report and in the store, instead of being published to be dropped. A
// run with ReplaySelection.NewIdentity does not ask. Default none; nil
// means none.
func WithReplayDoneCheck(done func(ctx context.Context, handler, identity string) (bool, error)) Option {
	return option{"WithReplayDoneCheck", forReplayer, func(c *config) { c.doneCheck = done }}
}

// Identity returns the dedup identity a replay of dl carries:
// levee.KeyDedupID from its metadata, else its original UUID as the
// message had it (lineageUUID).
func (dl Record) Identity() string {
	if id := dl.Metadata[levee.KeyDedupID]; id != "" {
		return id
	}
	return dl.lineageUUID()
}

// lineageUUID returns the original UUID a replay of dl carries: the
// letter's dlq.KeyOriginalUUID byte for byte (metadata is stored as it
// came), else OriginalUUID. OriginalUUID is cleaned for display and
// filters (trimmed, valid UTF-8; a NUL is U+FFFD in PostgreSQL), so a UUID
// with invalid UTF-8, a NUL or edge spaces would give the replay another
// dedup identity than the message's, and a consumer would run it again.
func (dl *Record) lineageUUID() string {
	if v := dl.Metadata[dlq.KeyOriginalUUID]; strings.TrimSpace(v) != "" {
		return v
	}
	return dl.OriginalUUID
}

// keyedIdentity reports whether dl's identity came from the consumer's
// key function: a levee.KeyDedupID other than the original UUID (the
// identity a replay of a UUID-keyed message carries).
func keyedIdentity(dl *Record) bool {
	id := dl.Metadata[levee.KeyDedupID]
	return id != "" && id != dl.lineageUUID()
}

// alreadyDone returns ErrAlreadySucceeded (or ErrDoneCheck) when the run
// must hold dl back because its identity is done, nil otherwise.
func (u *run) alreadyDone(ctx context.Context, dl *Record) error {
	check := u.r.cfg.doneCheck
	if check == nil || u.newIdentity || dl.Identity() == "" {
		return nil
	}
	done, err := check(ctx, dl.Handler, dl.Identity())
	switch {
	case err != nil:
		return fmt.Errorf("%w: identity %q: %w", ErrDoneCheck, dl.Identity(), err)
	case done:
		return fmt.Errorf("%w: identity %q; replay with --new-identity to run it again", ErrAlreadySucceeded, dl.Identity())
	}
	return nil
}
