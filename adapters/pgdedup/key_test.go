package pgdedup

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/levee-dev/levee"
)

// TestStoreKey: keys the text column keeps are stored as they are (rows
// written before escaping still match); the others, and keys that start
// like an escaped one, are escaped; no two keys share a stored form.
func TestStoreKey(t *testing.T) {
	plain := []string{"", "a", "6100", "ns/id", "é", "\x7f", "\x7fhex", "\x01"}
	escaped := []string{"\x7fhex:", "\x7fhex:6100", "\x7fhex:7f6865783a36313030", "a\x00", "\x00", "\xff", "a\xc3(", "ns/\x00id"}
	seen := map[string]string{}
	for i, k := range append(plain, escaped...) {
		s := storeKey(k)
		if asIs := s == k; asIs != (i < len(plain)) {
			t.Errorf("storeKey(%q) = %q: got stored as it is %v, want %v", k, s, asIs, i < len(plain))
		}
		if strings.IndexByte(s, 0) >= 0 || !utf8.ValidString(s) {
			t.Errorf("storeKey(%q) = %q: the text column refuses it", k, s)
		}
		if prev, ok := seen[s]; ok {
			t.Errorf("storeKey(%q) = storeKey(%q) = %q", k, prev, s)
		}
		seen[s] = k
	}
}

// TestWrapErr: a data exception (SQLSTATE class 22) is class validation,
// anything else (an outage, a deadline) keeps its class and its chain.
func TestWrapErr(t *testing.T) {
	tests := []struct {
		err  error
		want levee.Class
	}{
		{&pgconn.PgError{Code: "22021"}, levee.ClassValidation},
		{&pgconn.PgError{Code: "22001"}, levee.ClassValidation},
		{fmt.Errorf("query: %w", &pgconn.PgError{Code: "22P02"}), levee.ClassValidation},
		{&pgconn.PgError{Code: "57P01"}, levee.ClassTransient},
		{&pgconn.PgError{Code: "08006"}, levee.ClassTransient},
		{&pgconn.PgError{Code: "23505"}, levee.ClassTransient},
		{context.DeadlineExceeded, levee.ClassTransient},
	}
	for _, tt := range tests {
		err := wrapErr("claim", tt.err)
		if got := levee.ClassOf(err); got != tt.want {
			t.Errorf("%v: got class %q, want %q", tt.err, got, tt.want)
		}
		if !errors.Is(err, tt.err) {
			t.Errorf("%v: the cause is not in the chain of %v", tt.err, err)
		}
	}
}
