package postgres

import (
	"encoding/json"
	"fmt"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/adapters/internal/pgescape"
)

// UnmarshalMessage is watermill-sql's queue row decoding with the escaped
// metadata entries restored (pgescape.Unescape), except that it never
// fails on a row's metadata. watermill-sql fails the whole poll on a row
// whose metadata is not a JSON object of strings (an array, a number, an
// object with a number or a nested object in it: a row something else
// inserted), and every later poll picks the same row first, so the topic
// stalled with nothing dead-lettered. Such a row is handed over instead,
// with its UUID and payload and levee.KeyUndecodable set to the reason,
// so the dlq dead-letters it (class validation). A producer's own
// KeyUndecodable is dropped from a row that decodes.
func (s skipLockedQueueSchema) UnmarshalMessage(params wsql.UnmarshalMessageParams) (wsql.Row, error) {
	var r wsql.Row
	if err := params.Row.Scan(&r.Offset, &r.UUID, &r.Payload, &r.Metadata); err != nil {
		return wsql.Row{}, fmt.Errorf("could not scan message row: %w", err)
	}
	r.Msg = message.NewMessage(string(r.UUID), r.Payload)
	if r.Metadata == nil {
		return r, nil
	}
	var md message.Metadata
	if err := json.Unmarshal(r.Metadata, &md); err != nil {
		r.Msg.Metadata = message.Metadata{levee.KeyUndecodable: fmt.Sprintf("postgres row %d: metadata is not a JSON object of strings: %v", r.Offset, err)}
		return r, nil
	}
	if md != nil { // JSON null leaves it nil: no metadata
		pgescape.Unescape(md)
		delete(md, levee.KeyUndecodable)
		r.Msg.Metadata = md
	}
	return r, nil
}

// undecodable reports whether msg is a row UnmarshalMessage could not
// decode: its metadata is only the reason, so a delayed copy of it would
// lose the row's own metadata, and the copy, which decodes, would reach
// the handler without the mark.
func undecodable(msg *message.Message) bool {
	_, ok := msg.Metadata[levee.KeyUndecodable]
	return ok
}
