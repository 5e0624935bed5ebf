package postgres

import (
	"encoding/json"
	"fmt"
	"strings"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"

	"github.com/levee-dev/levee/adapters/internal/pgescape"
)

// InsertQuery is watermill-sql's queue insert with each message's
// metadata escaped (pgescape.Escape, shared with the dead-letter store).
func (s skipLockedQueueSchema) InsertQuery(params wsql.InsertQueryParams) (wsql.Query, error) {
	var b strings.Builder
	args := make([]any, 0, 3*len(params.Msgs))
	for i, msg := range params.Msgs {
		md, err := json.Marshal(pgescape.Escape(msg.Metadata))
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
