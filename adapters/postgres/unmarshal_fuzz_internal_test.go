package postgres

import (
	"encoding/json"
	"testing"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/adapters/internal/pgescape"
)

// row is a queue row as the poll scans it.
type row struct {
	offset        int64
	uuid, payload []byte
	metadata      []byte
}

func (r row) Scan(dest ...any) error {
	*dest[0].(*int64) = r.offset
	*dest[1].(*[]byte) = r.uuid
	*dest[2].(*[]byte) = r.payload
	*dest[3].(*[]byte) = r.metadata
	return nil
}

// FuzzUnmarshalMessage hands the row decoding any metadata a producer
// may have inserted. It never fails (a failure failed every poll of the
// table); a row whose metadata is a JSON object of strings (or null, or
// none) decodes as watermill-sql reads it, with no levee_undecodable (a
// producer's is dropped); any other is marked levee_undecodable with
// nothing else in its metadata; UUID and payload are kept.
func FuzzUnmarshalMessage(f *testing.F) {
	for _, md := range []string{`{"k":"v"}`, `null`, `[1]`, `1`, `"s"`, `{"a":1}`, `{"a":{"b":"c"}}`, `{"a":null}`,
		`{"levee_undecodable":"forged","k":"v"}`, `{"a":"1","a":"2"}`, `{"\u0000":"\ud800"}`, `not json`, ``} {
		f.Add([]byte(md), true)
	}
	f.Add([]byte(nil), false)
	f.Fuzz(func(t *testing.T, md []byte, present bool) {
		if !present {
			md = nil
		}
		r, err := skipLockedQueueSchema{}.UnmarshalMessage(wsql.UnmarshalMessageParams{Row: row{7, []byte("u"), []byte("p"), md}})
		if err != nil || r.Msg == nil {
			t.Fatalf("UnmarshalMessage of metadata %q: %v, %v", md, r.Msg, err)
		}
		if r.Msg.UUID != "u" || string(r.Msg.Payload) != "p" || r.Offset != 7 {
			t.Fatalf("row %q %q offset %d, want u, p, 7", r.Msg.UUID, r.Msg.Payload, r.Offset)
		}
		var want map[string]string
		decodes := md == nil || json.Unmarshal(md, &want) == nil
		reason, marked := r.Msg.Metadata[levee.KeyUndecodable]
		if !decodes {
			if !marked || reason == "" || len(r.Msg.Metadata) != 1 {
				t.Fatalf("metadata %q does not decode: got %v, want only a reason in %s", md, r.Msg.Metadata, levee.KeyUndecodable)
			}
			return
		}
		if marked {
			t.Fatalf("metadata %q decodes, yet the row is marked %s=%q", md, levee.KeyUndecodable, reason)
		}
		pgescape.Unescape(want)
		delete(want, levee.KeyUndecodable)
		if len(r.Msg.Metadata) != len(want) {
			t.Fatalf("metadata %q: got %v, want %v", md, r.Msg.Metadata, want)
		}
		for k, v := range want {
			if r.Msg.Metadata[k] != v {
				t.Fatalf("metadata %q: got %v, want %v", md, r.Msg.Metadata, want)
			}
		}
	})
}
