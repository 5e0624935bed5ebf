package redisstore

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/levee-dev/levee/dlq/dlqops"
)

// Fields of a letter's hash. Metadata keys are stored as fields
// "m:<key>", so a letter round-trips byte for byte (Redis strings are
// binary safe) and reads in redis-cli as it arrived.
const (
	fID         = "id"
	fUUID       = "uuid"
	fOrigUUID   = "ouuid"
	fDLQTopic   = "dlqt"
	fTopic      = "topic"
	fHandler    = "handler"
	fGroup      = "cg"
	fFP         = "fp"
	fClass      = "ecl"
	fType       = "ety"
	fError      = "err"
	fAttempts   = "att"
	fReplays    = "rc"
	fFailedAt   = "fat"
	fReceivedAt = "rat"
	fStatus     = "st"
	fReason     = "rsn"
	fReplayedAt = "rpat"
	fReplayUUID = "rpid"
	fPayload    = "pl"
	fClaimOwner = "co"
	fClaimUntil = "cu"
	fTruncated  = "trunc"
	metaPrefix  = "m:"
)

// micros is t as Unix microseconds: the stored precision (what the
// PostgreSQL store keeps too) and the score of the sorted indexes.
func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }

func microString(t time.Time) string { return strconv.FormatInt(micros(t), 10) }

// ceilMicros is t in Unix microseconds rounded up: a stored time (whole
// microseconds) is at or after t exactly when it is at or after
// ceilMicros(t).
func ceilMicros(t time.Time) int64 {
	m := t.UnixMicro()
	if t.Nanosecond()%1000 != 0 {
		m++
	}
	return m
}

// encode appends the letter's field count and field/value pairs to args,
// as the add script reads them, after bounding it with dlqops.BoundRecord.
func encode(args []any, dl dlqops.Record) []any {
	dl = dlqops.BoundRecord(dl)
	st := dl.Status
	if st == "" {
		st = dlqops.StatusNew
	}
	n := 20 + len(dl.Metadata)
	if !dl.ReplayedAt.IsZero() {
		n++
	}
	args = append(args, n,
		fID, dl.ID, fUUID, dl.UUID, fOrigUUID, dl.OriginalUUID, fDLQTopic, dl.DLQTopic,
		fTopic, dl.OriginalTopic, fHandler, dl.Handler, fGroup, dl.ConsumerGroup, fFP, dl.Fingerprint,
		fClass, dl.ErrorClass, fType, dl.ErrorType, fError, dl.Error,
		fAttempts, strconv.Itoa(dl.Attempts), fReplays, strconv.Itoa(dl.ReplayCount),
		fFailedAt, microString(dl.FailedAt), fReceivedAt, microString(dl.ReceivedAt),
		fStatus, string(st), fReason, dl.Reason, fReplayUUID, dl.ReplayUUID, fPayload, dl.Payload, fTruncated, dl.Truncated)
	if !dl.ReplayedAt.IsZero() {
		args = append(args, fReplayedAt, microString(dl.ReplayedAt))
	}
	for k, v := range dl.Metadata {
		args = append(args, metaPrefix+k, v)
	}
	return args
}

// decodePairs decodes a letter from HGETALL's flat field/value list as a
// script returns it.
func decodePairs(v any) (dlqops.Record, error) {
	list, ok := v.([]any)
	if !ok || len(list)%2 != 0 {
		return dlqops.Record{}, fmt.Errorf("unexpected record reply %T", v)
	}
	fields := make(map[string]string, len(list)/2)
	for i := 0; i < len(list); i += 2 {
		k, ok1 := list[i].(string)
		val, ok2 := list[i+1].(string)
		if !ok1 || !ok2 {
			return dlqops.Record{}, fmt.Errorf("unexpected record field %T/%T", list[i], list[i+1])
		}
		fields[k] = val
	}
	return decode(fields)
}

// decode decodes a letter from its hash fields.
func decode(h map[string]string) (dlqops.Record, error) {
	dl := dlqops.Record{
		ID: h[fID], UUID: h[fUUID], OriginalUUID: h[fOrigUUID], DLQTopic: h[fDLQTopic],
		OriginalTopic: h[fTopic], Handler: h[fHandler], ConsumerGroup: h[fGroup], Fingerprint: h[fFP],
		ErrorClass: h[fClass], ErrorType: h[fType], Error: h[fError],
		Status: dlqops.Status(h[fStatus]), Reason: h[fReason], ReplayUUID: h[fReplayUUID], Truncated: h[fTruncated],
		Payload: []byte(h[fPayload]), Metadata: map[string]string{},
	}
	var err error
	num := func(field string) int64 {
		s, ok := h[field]
		if !ok || s == "" || err != nil {
			return 0
		}
		v, perr := strconv.ParseInt(s, 10, 64)
		if perr != nil {
			err = fmt.Errorf("record %q: field %s: %w", dl.ID, field, perr)
		}
		return v
	}
	dl.Attempts = int(num(fAttempts))
	dl.ReplayCount = int(num(fReplays))
	dl.FailedAt = fromMicros(num(fFailedAt))
	dl.ReceivedAt = fromMicros(num(fReceivedAt))
	if _, ok := h[fReplayedAt]; ok {
		dl.ReplayedAt = fromMicros(num(fReplayedAt))
	}
	if err != nil {
		return dl, err
	}
	for k, v := range h {
		if name, ok := strings.CutPrefix(k, metaPrefix); ok {
			dl.Metadata[name] = v
		}
	}
	return dl, nil
}

// parseScore parses a sorted-set score (Unix microseconds) as Redis
// prints it.
func parseScore(s string) (time.Time, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("score %q: %w", s, err)
	}
	return fromMicros(int64(f)), nil
}
