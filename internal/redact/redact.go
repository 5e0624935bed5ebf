package redact

import (
	"cmp"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// Mask replaces a credential.
const Mask = "xxxxx"

// URL returns raw with its credentials replaced by Mask: the password of
// the userinfo (user:password@ in a URL or in a host:port address), the
// values of password= and sslpassword= (URL query or libpq key=value
// DSN), and a bare token in the userinfo of a nats:// or tls:// URL. The
// user name stays. A string without credentials is returned unchanged.
func URL(raw string) string {
	spans := secretSpans(raw)
	if len(spans) == 0 {
		return raw
	}
	var b strings.Builder
	last := 0
	for _, s := range spans {
		b.WriteString(raw[last:s.from])
		b.WriteString(Mask)
		last = s.to
	}
	b.WriteString(raw[last:])
	return b.String()
}

// Secrets returns the credentials in raw, as written and in their
// percent-decoded and re-encoded spellings (what a client library may
// print), longest first. Nil when raw holds none.
func Secrets(raw string) []string {
	var vals []string
	for _, sp := range secretSpans(raw) {
		vals = append(vals, raw[sp.from:sp.to])
	}
	return spellings(vals)
}

// spellings returns each value as written, percent-decoded, and encoded
// the ways net/url encodes (path, query, userinfo), longest first.
func spellings(vals []string) []string {
	var out []string
	add := func(s string) {
		if s != "" && s != Mask && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	for _, v := range vals {
		for _, d := range []string{v, unescape(v, url.PathUnescape), unescape(v, url.QueryUnescape)} {
			if d == "" {
				continue
			}
			add(d)
			add(url.PathEscape(d))
			add(url.QueryEscape(d))
			add(strings.TrimPrefix(url.UserPassword("", d).String(), ":"))
		}
	}
	slices.SortStableFunc(out, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	return out
}

func unescape(s string, f func(string) (string, error)) string {
	d, err := f(s)
	if err != nil {
		return ""
	}
	return d
}

// Error returns err with every credential of the connection strings raws
// hidden from its message: each raw string is replaced by URL(raw), then
// every spelling of its credentials (Secrets) by Mask. errors.Is and
// errors.As still see err; a caller that digs a library error out of the
// chain and prints it bypasses the redaction. Nil stays nil; an error
// whose message carries no credential is returned as is.
func Error(err error, raws ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	red := Message(msg, raws...)
	if red == msg {
		return err
	}
	return &redacted{msg: red, err: err}
}

// Values returns err with each credential value (a password field, not a
// connection string) hidden from its message in every spelling Secrets
// knows. As Error, it keeps the chain and returns err when nothing changed.
func Values(err error, values ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	red := msg
	for _, s := range spellings(values) {
		red = strings.ReplaceAll(red, s, Mask)
	}
	if red == msg {
		return err
	}
	return &redacted{msg: red, err: err}
}

// Message returns msg with every credential of the connection strings raws
// hidden, as Error does.
func Message(msg string, raws ...string) string {
	for _, raw := range raws {
		if raw == "" {
			continue
		}
		if r := URL(raw); r != raw {
			msg = strings.ReplaceAll(msg, raw, r)
		}
		for _, s := range Secrets(raw) {
			msg = strings.ReplaceAll(msg, s, Mask)
		}
	}
	return msg
}

type redacted struct {
	msg string
	err error
}

func (e *redacted) Error() string { return e.msg }
func (e *redacted) Unwrap() error { return e.err }

// ParseURL parses raw like url.Parse, but its error never carries the
// credentials: it names the redacted URL and what is wrong without
// quoting the offending characters (which may be part of a password). It
// also rejects a URL whose '@' lies outside the host part, which url.Parse
// accepts with the password in the host, port or path (a password with an
// unencoded '/', '?' or '#'), and one with an unencoded '@' in the
// userinfo, which clients split differently (net/url at the last '@', pgx
// at the first). The error advises percent-encoding.
func ParseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		what := "does not parse"
		var ue *url.Error
		if errors.As(err, &ue) {
			what = describe(ue.Err)
		}
		return nil, fmt.Errorf("url %q: %s%s", URL(raw), what, hint(raw))
	}
	if i := strings.Index(raw, "://"); i >= 0 {
		rest := raw[i+3:]
		auth := rest
		if j := strings.IndexAny(auth, "/?#"); j >= 0 {
			auth = auth[:j]
		}
		switch {
		case u.User == nil && strings.Contains(rest, "@"):
			return nil, fmt.Errorf("url %q: the '@' is not in the host part%s", URL(raw), hint(raw))
		case strings.Count(auth, "@") > 1:
			// net/url splits at the last '@', pgx at the first.
			return nil, fmt.Errorf("url %q: an '@' in the user name or password%s", URL(raw), hint(raw))
		}
	}
	return u, nil
}

// describe names a url.Parse failure without the quoted part, which may
// be a piece of the password (invalid URL escape "%zz", invalid port
// ":word" after host).
func describe(err error) string {
	if err == nil {
		return "does not parse"
	}
	msg := err.Error()
	if i := strings.IndexAny(msg, "\"'`"); i >= 0 {
		msg = msg[:i]
	}
	msg = strings.TrimSpace(strings.TrimPrefix(msg, "net/url: "))
	if msg == "" {
		return "does not parse"
	}
	return msg
}

func hint(raw string) string {
	if i := strings.Index(raw, "://"); i < 0 || !strings.Contains(raw[i+3:], "@") {
		return ""
	}
	return " (percent-encode reserved characters in the user name and password: % as %25, / as %2F, ? as %3F, # as %23, @ as %40, : as %3A)"
}

type span struct{ from, to int }

var (
	queryPassword = regexp.MustCompile(`(?i)(?:^|[?&;])(?:ssl)?password=`)
	dsnPassword   = regexp.MustCompile(`(?i)(?:^|\s)(?:ssl)?password\s*=\s*`)
)

// secretSpans returns the byte ranges of raw that hold credentials, sorted
// and without overlap.
func secretSpans(raw string) []span {
	var spans []span
	hostFrom := 0 // where the host part starts (after the userinfo)
	if i := strings.Index(raw, "://"); i >= 0 {
		scheme := strings.ToLower(raw[:i])
		rest := i + 3
		userinfo := ""
		if u, err := url.Parse(raw); err == nil && u.User != nil {
			// A parsed userinfo is exact: it ends at the last '@' of the
			// authority, which ends at the first '/', '?' or '#'.
			auth := raw[rest:]
			if j := strings.IndexAny(auth, "/?#"); j >= 0 {
				auth = auth[:j]
			}
			userinfo = auth[:strings.LastIndex(auth, "@")]
		} else if j := strings.LastIndex(raw[rest:], "@"); j >= 0 {
			// Unparsable, or the '@' landed in the path: everything up to
			// the last '@' is taken for the userinfo (over-masking a path
			// with an '@' is the safe mistake).
			userinfo = raw[rest : rest+j]
		}
		if userinfo != "" || strings.HasPrefix(raw[rest:], "@") {
			hostFrom = rest + len(userinfo) + 1
			if c := strings.IndexByte(userinfo, ':'); c >= 0 {
				spans = append(spans, span{rest + c + 1, rest + len(userinfo)})
			} else if scheme == "nats" || scheme == "tls" {
				spans = append(spans, span{rest, rest + len(userinfo)}) // a NATS token
			}
		}
		spans = append(spans, valueSpans(raw, hostFrom, queryPassword, "&#")...)
	} else {
		spans = append(spans, valueSpans(raw, 0, dsnPassword, "")...)
		if len(spans) == 0 {
			if j := strings.LastIndex(raw, "@"); j >= 0 {
				if c := strings.IndexByte(raw[:j], ':'); c >= 0 {
					spans = append(spans, span{c + 1, j}) // user:password@host:port
				}
			}
		}
	}
	slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.from, b.from) })
	out := spans[:0]
	for _, s := range spans {
		if s.to <= s.from {
			continue
		}
		if n := len(out); n > 0 && s.from < out[n-1].to {
			out[n-1].to = max(out[n-1].to, s.to)
			continue
		}
		out = append(out, s)
	}
	return out
}

// valueSpans finds the values after the matches of re in raw[from:]. A
// value ends at one of stop, or (stop empty: a DSN) at white space, or at
// the closing quote of a quoted value.
func valueSpans(raw string, from int, re *regexp.Regexp, stop string) []span {
	var spans []span
	for _, m := range re.FindAllStringIndex(raw[from:], -1) {
		start := from + m[1]
		end := len(raw)
		if stop != "" {
			if j := strings.IndexAny(raw[start:], stop); j >= 0 {
				end = start + j
			}
		} else if strings.HasPrefix(raw[start:], "'") {
			end = quotedEnd(raw, start)
		} else if j := strings.IndexAny(raw[start:], " \t\r\n"); j >= 0 {
			end = start + j
		}
		spans = append(spans, span{start, end})
	}
	return spans
}

// quotedEnd returns the end of the libpq single-quoted value starting at
// raw[start] (backslash escapes a quote), or len(raw) when unterminated.
func quotedEnd(raw string, start int) int {
	for i := start + 1; i < len(raw); i++ {
		switch raw[i] {
		case '\\':
			i++
		case '\'':
			return i + 1
		}
	}
	return len(raw)
}
