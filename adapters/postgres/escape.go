package postgres

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
)

// escapedKey holds, in a stored row's metadata, the entries that the
// metadata column cannot keep as they are: a key or value with a NUL byte
// or invalid UTF-8, and an entry under escapedKey itself. The column is
// JSON; a NUL is stored as \u0000, which PostgreSQL's JSON operators (the
// poll's metadata->>'levee_redeliver_at', the requeue's ::jsonb) refuse
// for the whole row ("unsupported Unicode escape sequence"), so one such
// row would stop every poll of its topic; invalid UTF-8 would be replaced
// by U+FFFD. The value is a list of base64(key):base64(value) (standard
// encoding, whose alphabet has neither ':' nor ','), joined by ',' in key
// order. The encoding is injective: every entry is stored either as it is
// or in escapedKey, and escapedKey itself is always escaped. A message
// whose metadata needs none is stored exactly as watermill-sql stores it,
// so watermill-sql's own publishers and subscribers on the same table keep
// working for it.
const escapedKey = "levee_pg_escaped"

// needsEscape reports whether the metadata column cannot keep s as it is.
func needsEscape(s string) bool {
	return strings.IndexByte(s, 0) >= 0 || !utf8.ValidString(s)
}

// escapeMetadata returns md as it is stored: md itself when no entry
// needs escaping, else a copy with those entries moved into escapedKey.
func escapeMetadata(md message.Metadata) message.Metadata {
	var esc []string
	for k, v := range md {
		if k == escapedKey || needsEscape(k) || needsEscape(v) {
			esc = append(esc, k)
		}
	}
	if len(esc) == 0 {
		return md
	}
	sort.Strings(esc)
	out := make(message.Metadata, len(md)-len(esc)+1)
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
	out[escapedKey] = b.String()
	return out
}

// unescapeMetadata restores in place the entries escapeMetadata moved
// into escapedKey. A value it cannot decode (not written by Levee) is
// left as it is, so the message is still delivered.
func unescapeMetadata(md message.Metadata) {
	raw, ok := md[escapedKey]
	if !ok {
		return
	}
	entries, err := decodeEscaped(raw)
	if err != nil {
		return
	}
	delete(md, escapedKey)
	for k, v := range entries {
		md[k] = v
	}
}

// decodeEscaped parses escapedKey's value.
func decodeEscaped(raw string) (map[string]string, error) {
	entries := map[string]string{}
	if raw == "" {
		return entries, nil
	}
	for _, pair := range strings.Split(raw, ",") {
		k, v, ok := strings.Cut(pair, ":")
		if !ok {
			return nil, fmt.Errorf("levee/postgres: %s: entry without ':'", escapedKey)
		}
		kb, err := base64.StdEncoding.DecodeString(k)
		if err != nil {
			return nil, fmt.Errorf("levee/postgres: %s: key: %w", escapedKey, err)
		}
		vb, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			return nil, fmt.Errorf("levee/postgres: %s: value: %w", escapedKey, err)
		}
		entries[string(kb)] = string(vb)
	}
	return entries, nil
}

// InsertQuery is watermill-sql's queue insert with each message's
// metadata escaped (escapeMetadata).
func (s skipLockedQueueSchema) InsertQuery(params wsql.InsertQueryParams) (wsql.Query, error) {
	var b strings.Builder
	args := make([]any, 0, 3*len(params.Msgs))
	for i, msg := range params.Msgs {
		md, err := json.Marshal(escapeMetadata(msg.Metadata))
		if err != nil {
			return wsql.Query{}, fmt.Errorf("levee/postgres: marshal the metadata of message %s: %w", msg.UUID, err)
		}
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "($%d,$%d,$%d)", 3*i+1, 3*i+2, 3*i+3)
		args = append(args, msg.UUID, []byte(msg.Payload), md)
	}
	q := `INSERT INTO ` + s.MessagesTable(params.Topic) + ` (uuid, payload, metadata) VALUES ` + b.String()
	return wsql.Query{Query: q, Args: args}, nil
}

// UnmarshalMessage is watermill-sql's queue row decoding with the
// escaped metadata entries restored (unescapeMetadata).
func (s skipLockedQueueSchema) UnmarshalMessage(params wsql.UnmarshalMessageParams) (wsql.Row, error) {
	r, err := s.PostgreSQLQueueSchema.UnmarshalMessage(params)
	if err != nil {
		return r, err
	}
	unescapeMetadata(r.Msg.Metadata)
	return r, nil
}
