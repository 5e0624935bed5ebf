package pgstore

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"unicode/utf8"
)

// maxAttemptUUID is the longest message UUID the attempts table keeps as
// it is. A btree index entry holds at most 2704 bytes, so a longer UUID
// in the primary key would fail every insert.
const maxAttemptUUID = 512

// digestPrefix starts the stored form of a UUID that is not kept as it
// is. It starts with DEL (0x7f), which no UUID in practice does, so the
// rows of UUIDs kept as they are (all rows written by earlier versions
// but those of hostile UUIDs) still match.
const digestPrefix = "\x7fsha256:"

// attemptUUID returns the form of a message UUID kept in the attempts
// table's uuid column: the UUID itself when it is valid UTF-8 without NUL,
// at most maxAttemptUUID bytes and not starting with DEL; otherwise
// digestPrefix and the SHA-256 of its bytes in hex. A producer chooses the
// UUID: without this, one longer than an index entry failed every count
// (a store error per attempt) and UUIDs that differ only in invalid bytes
// or NUL shared one count (text replaces those bytes), so a message could
// be dead-lettered before its own max attempts. Two UUIDs share a row only
// if they are equal or their SHA-256 collide.
func attemptUUID(uuid string) string {
	if len(uuid) <= maxAttemptUUID && utf8.ValidString(uuid) && strings.IndexByte(uuid, 0) < 0 && !strings.HasPrefix(uuid, "\x7f") {
		return uuid
	}
	sum := sha256.Sum256([]byte(uuid))
	return digestPrefix + hex.EncodeToString(sum[:])
}
