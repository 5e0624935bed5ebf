package pgstore

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/levee-dev/levee/adapters/internal/pgescape"
	"github.com/levee-dev/levee/dlq/dlqops"
)

// fuzzRow is a pgx.Row whose columns are what a letters row may hold,
// tampered with or not: any text, any integer, any time, any metadata
// document, NULLs.
type fuzzRow struct {
	text      string
	n         int
	at        time.Time
	metadata  []byte
	payload   []byte
	nullTimes bool
}

func (r fuzzRow) Scan(dest ...any) error {
	for _, d := range dest {
		switch p := d.(type) {
		case *string:
			*p = r.text
		case *int:
			*p = r.n
		case *time.Time:
			*p = r.at
		case **time.Time:
			if !r.nullTimes {
				at := r.at
				*p = &at
			}
		case *[]byte:
			if p == nil {
				return fmt.Errorf("nil destination")
			}
			*p = r.payload
		default:
			return fmt.Errorf("unexpected destination %T", d)
		}
	}
	return nil
}

// mdRow scans md into the metadata column and payload into the payload
// column (both are []byte destinations, in that order).
type mdRow struct {
	fuzzRow
}

func (r mdRow) Scan(dest ...any) error {
	bytesSeen := 0
	for _, d := range dest {
		if p, ok := d.(*[]byte); ok {
			if bytesSeen == 0 {
				*p = r.metadata
			} else {
				*p = r.payload
			}
			bytesSeen++
			continue
		}
		if err := r.fuzzRow.Scan(d); err != nil {
			return err
		}
	}
	return nil
}

// FuzzScanLetter decodes a letters row holding anything a tampered or
// foreign row may hold (metadata that is not a JSON object of strings,
// null, an escaped entry that is not Levee's encoding, times far off, any
// count): scanLetter returns an error or a record whose metadata is a
// usable map, and the replay built from it carries a valid replay count;
// never a panic.
func FuzzScanLetter(f *testing.F) {
	f.Add("dl-1", 3, int64(1767225600), []byte(`{"k":"v"}`), []byte("p"), false)
	f.Add("", -1, int64(-62135596800), []byte(`null`), []byte(nil), true)
	f.Add("x", 1<<62, int64(253402300799), []byte(`{"`+pgescape.Key+`":"!!"}`), []byte{0}, false)
	f.Add("\xff", 0, int64(0), []byte(`{"a":1}`), []byte{}, true)
	f.Add("id", 2147483647, int64(1), []byte(`[]`), []byte("x"), false)
	esc, _ := json.Marshal(pgescape.Escape(map[string]string{"\x00": "\xff", "k": "v"}))
	f.Add("id", 9, int64(2), esc, []byte("x"), false)
	f.Fuzz(func(t *testing.T, text string, n int, unix int64, md, payload []byte, nullTimes bool) {
		row := mdRow{fuzzRow{text: text, n: n, at: time.Unix(unix, 0), metadata: md, payload: payload, nullTimes: nullTimes}}
		dl, err := scanLetter(row)
		if err != nil {
			return
		}
		if dl.Metadata == nil {
			t.Fatalf("metadata %q decoded to a nil map", md)
		}
		if dl.Payload == nil {
			t.Fatal("nil payload")
		}
		out := dlqops.ReplayMessage(dl, "r", time.Unix(1767225600, 0))
		if c := out.Metadata["levee_replay_count"]; c == "" || c[0] == '-' {
			t.Fatalf("replay of a letter with replay count %d carries %q", dl.ReplayCount, c)
		}
		_ = dl.String()
		_ = dlqops.BoundRecord(dl)
	})
}
