package postgres

import (
	"encoding/json"
	"fmt"
	"strings"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/adapters/internal/pgescape"
)

// The escaping is adapters/internal/pgescape's, shared with the
// dead-letter store (adapters/pgstore).
const escapedKey = pgescape.Key

func needsEscape(s string) bool { return pgescape.NeedsEscape(s) }

func escapeMetadata(md message.Metadata) message.Metadata { return pgescape.Escape(md) }

func unescapeMetadata(md message.Metadata) { pgescape.Unescape(md) }

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
