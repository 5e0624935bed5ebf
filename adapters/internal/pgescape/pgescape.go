// Package pgescape stores metadata in PostgreSQL without losing a byte:
// a JSON column (the PostgreSQL transport's) refuses a NUL for its JSON
// operators and replaces invalid UTF-8, and encoding/json replaces invalid
// UTF-8 in any JSON it writes (the dead-letter store's metadata), so the
// entries that would change are kept base64-encoded under one key and
// restored on reading.
package pgescape

import (
	"encoding/base64"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// Key holds, in stored metadata, the entries PostgreSQL or encoding/json
// cannot keep as they are: a key or value with a NUL byte or invalid
// UTF-8, and an entry under Key itself. In the transport's JSON column a
// NUL is stored as \u0000, which PostgreSQL's JSON operators (the poll's
// metadata->>'levee_redeliver_at', the requeue's ::jsonb) refuse for the
// whole row, so one such row would stop every poll of its topic; invalid
// UTF-8 would be replaced by U+FFFD there and in the dead-letter store's
// JSON. The value is a list of base64(key):base64(value) (standard
// encoding, whose alphabet has neither ':' nor ','), joined by ',' in key
// order. The encoding is injective: every entry is stored either as it is
// or in Key, and Key itself is always escaped. Metadata that needs none is
// stored exactly as before, so watermill-sql's own publishers and
// subscribers on the transport's tables keep working for it.
const Key = "levee_pg_escaped"

// NeedsEscape reports whether the metadata column cannot keep s as it is.
func NeedsEscape(s string) bool {
	return strings.IndexByte(s, 0) >= 0 || !utf8.ValidString(s)
}

// Escape returns md as it is stored: md itself when no entry
// needs escaping, else a copy with those entries moved into Key.
func Escape(md map[string]string) map[string]string {
	var esc []string
	for k, v := range md {
		if k == Key || NeedsEscape(k) || NeedsEscape(v) {
			esc = append(esc, k)
		}
	}
	if len(esc) == 0 {
		return md
	}
	sort.Strings(esc)
	out := make(map[string]string, len(md)-len(esc)+1)
	for k, v := range md {
		out[k] = v
	}
	var b strings.Builder
	for i, k := range esc {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(base64.StdEncoding.EncodeToString([]byte(k)))
		b.WriteByte(':')
		b.WriteString(base64.StdEncoding.EncodeToString([]byte(md[k])))
		delete(out, k)
	}
	out[Key] = b.String()
	return out
}

// Unescape restores in place the entries Escape moved
// into Key. A value it cannot decode (not written by Levee) is
// left as it is, so the message is still delivered.
func Unescape(md map[string]string) {
	raw, ok := md[Key]
	if !ok {
		return
	}
	entries, err := Decode(raw)
	if err != nil {
		return
	}
	delete(md, Key)
	for k, v := range entries {
		md[k] = v
	}
}

// Decode parses Key's value.
func Decode(raw string) (map[string]string, error) {
	entries := map[string]string{}
	if raw == "" {
		return entries, nil
	}
	for _, pair := range strings.Split(raw, ",") {
		k, v, ok := strings.Cut(pair, ":")
		if !ok {
			return nil, fmt.Errorf("levee/pgescape: %s: entry without ':'", Key)
		}
		kb, err := base64.StdEncoding.DecodeString(k)
		if err != nil {
			return nil, fmt.Errorf("levee/pgescape: %s: key: %w", Key, err)
		}
		vb, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			return nil, fmt.Errorf("levee/pgescape: %s: value: %w", Key, err)
		}
		entries[string(kb)] = string(vb)
	}
	return entries, nil
}
