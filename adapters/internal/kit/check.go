package kit

import (
	"fmt"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/adapters/transport"
	"github.com/levee-dev/levee/internal/config"
	"github.com/levee-dev/levee/internal/redact"
)

// Invalid returns a configuration error for key (a dotted path relative to
// the `transport` section) wrapping transport.ErrInvalidConfig.
func Invalid(key, format string, args ...any) error {
	return config.Field(key, fmt.Errorf("%w: %s", transport.ErrInvalidConfig, fmt.Sprintf(format, args...)))
}

// CheckURL checks that raw parses, has one of schemes and names a host.
func CheckURL(raw string, schemes ...string) error {
	u, err := redact.ParseURL(raw)
	if err != nil {
		return err
	}
	ok := false
	for _, s := range schemes {
		if u.Scheme == s {
			ok = true
		}
	}
	if !ok {
		return fmt.Errorf("scheme %q not accepted (want %s)", u.Scheme, strings.Join(schemes, " or "))
	}
	if u.Host == "" {
		return fmt.Errorf("no host in %q", redact.URL(raw))
	}
	return nil
}

// CheckHostPort checks that addr is host:port.
func CheckHostPort(addr string) error {
	i := strings.LastIndex(addr, ":")
	if i <= 0 || i == len(addr)-1 || strings.ContainsAny(addr, "@/") {
		return fmt.Errorf("%q is not host:port", redact.URL(addr))
	}
	return nil
}

// RetryAfterOf reads levee_retry_after; garbage or non-positive means
// none, and a longer delay than levee.MaxRetryAfter is cut to it.
func RetryAfterOf(msg *message.Message) time.Duration {
	v := msg.Metadata.Get(levee.KeyRetryAfter)
	if v == "" {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0
	}
	return min(d, levee.MaxRetryAfter)
}

// StripControl deletes from md, at ingress, the control keys a producer
// must not set and the keys with ReservedPrefix, all but the control keys
// in keep: those the adapter itself set (the delivery count from the
// broker, levee_undecodable on a message it could not decode).
func StripControl(md message.Metadata, keep ...string) {
	StripReserved(md)
	if len(keep) == 0 {
		levee.StripControl(md)
		return
	}
	type entry struct{ k, v string }
	var buf [2]entry
	kept := buf[:0]
	for _, k := range keep {
		if v, ok := md[k]; ok {
			kept = append(kept, entry{k, v})
		}
	}
	levee.StripControl(md)
	for _, e := range kept {
		md[e.k] = e.v
	}
}

// ReservedPrefix begins the metadata keys Watermill's transports keep for
// themselves (watermill-redisstream refuses to publish a message whose
// metadata has _watermill_message_uuid). One in a message's metadata was
// put there by a producer: a dead letter carrying it could never be
// published, and its message was Nacked for ever.
const ReservedPrefix = "_watermill_"

// HasReserved reports whether md has a key with ReservedPrefix.
func HasReserved(md message.Metadata) bool {
	for k := range md {
		if strings.HasPrefix(k, ReservedPrefix) {
			return true
		}
	}
	return false
}

// StripReserved deletes md's keys with ReservedPrefix.
func StripReserved(md message.Metadata) {
	for k := range md {
		if strings.HasPrefix(k, ReservedPrefix) {
			delete(md, k)
		}
	}
}
