package pgdedup

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/levee-dev/levee"
)

// escapedPrefix starts the stored form of a key the key column cannot
// keep as it is. The column is text: PostgreSQL refuses a NUL byte and
// invalid UTF-8 in it (SQLSTATE 22021), and an identity may hold either
// (a UUID from AMQP or NATS, or levee_dedup_id, which a producer sets).
// Such a key is stored as escapedPrefix followed by its bytes in hex, so
// it is still one row per identity, and no two keys share one: every
// other key is stored as it is, and a key that itself starts with
// escapedPrefix is escaped too, so no escaped form equals a key stored as
// it is. The prefix starts with DEL (0x7f), which no identity in practice
// does, so the keys of rows written before escaping existed still match.
const escapedPrefix = "\x7fhex:"

// storeKey returns the form of key kept in the key column.
func storeKey(key string) string {
	if strings.IndexByte(key, 0) < 0 && utf8.ValidString(key) && !strings.HasPrefix(key, escapedPrefix) {
		return key
	}
	return escapedPrefix + hex.EncodeToString([]byte(key))
}

// refusedError is a store error caused by the statement's input rather
// than by the server's state (SQLSTATE class 22, data exception): the
// same call fails the same way every time, so it declares the class
// validation (the dedup middleware dead-letters the message with the
// reason instead of deferring it for ever).
type refusedError struct{ err error }

func (e *refusedError) Error() string      { return e.err.Error() }
func (e *refusedError) Unwrap() error      { return e.err }
func (e *refusedError) ErrorClass() string { return string(levee.ClassValidation) }

// wrapErr returns err with the context what, classed validation when the
// database refused the statement's data.
func wrapErr(what string, err error) error {
	err = fmt.Errorf("levee/pgdedup: %s: %w", what, err)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && strings.HasPrefix(pgErr.Code, "22") {
		return &refusedError{err: err}
	}
	return err
}
