package redisstore

import (
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
)

// FuzzCodec: a letter the monitor records from any message (hostile
// metadata and payload, garbage counts and times) is stored and read back
// as the bounded record, byte for byte, times at the stored microsecond;
// and a hash read back with garbage in any field decodes with an error or
// a record, never a panic.
func FuzzCodec(f *testing.F) {
	f.Add("u", "k", "v", "3", "2026-01-02T03:04:05.123456789Z", []byte("p"), "att", "-1")
	f.Add("", "m:x", "\x00\xff", "-5", "garbage", []byte(nil), "fat", "99999999999999999999")
	f.Add("\xff", "levee_error", "boom", "9223372036854775807", "9999-12-31T23:59:59Z", []byte{0}, "rpat", "")
	now := time.Date(2026, 1, 2, 3, 4, 5, 678901234, time.UTC)
	f.Fuzz(func(t *testing.T, uuid, key, value, count, at string, payload []byte, field, garbage string) {
		msg := message.NewMessage(uuid, payload)
		msg.Metadata[key] = value
		msg.Metadata[dlq.KeyAttempts] = count
		msg.Metadata[dlq.KeyReplayCount] = count
		msg.Metadata[dlq.KeyLastFailureAt] = at
		msg.Metadata[dlq.KeyOriginalTopic] = value
		want := dlqops.BoundRecord(dlqops.NewRecord(msg, "t.dlq", now))
		h := fieldsOf(t, encode(nil, want))
		got, err := decode(h)
		if err != nil {
			t.Fatalf("decode of an encoded record: %v", err)
		}
		want.Status = dlqops.StatusNew
		want.FailedAt, want.ReceivedAt = want.FailedAt.Truncate(time.Microsecond), want.ReceivedAt.Truncate(time.Microsecond)
		if want.Payload == nil {
			want.Payload = []byte{}
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("round trip:\ngot  %+v\nwant %+v", got, want)
		}

		h[field] = garbage
		if _, err := decode(h); err == nil && (field == fAttempts || field == fFailedAt) && garbage != "" {
			if _, perr := strconv.ParseInt(garbage, 10, 64); perr != nil {
				t.Fatalf("field %s = %q decoded without an error", field, garbage)
			}
		}
	})
}

// fieldsOf turns encode's arguments (a count, then field/value pairs) into
// the hash Redis stores.
func fieldsOf(t *testing.T, args []any) map[string]string {
	t.Helper()
	h := map[string]string{}
	for i := 1; i+1 < len(args); i += 2 {
		k, _ := args[i].(string)
		switch v := args[i+1].(type) {
		case string:
			h[k] = v
		case []byte:
			h[k] = string(v)
		default:
			t.Fatalf("field %s: value of type %T", k, v)
		}
	}
	if n, _ := args[0].(int); n != len(h) {
		t.Fatalf("encode counts %d fields, writes %d", n, len(h))
	}
	return h
}
