package redact

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
)

// hostile are passwords that break url.Parse or make it misplace the
// password, each with the characters the issue names.
var hostile = []string{"p%zzword", "pass/word", "pass#word", "p@ss@word", "s3cr%zz/#@et", "12345/word", "pa?ss", "pass:word"}

func TestURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"amqp://guest:guest@127.0.0.1:5672/", "amqp://guest:xxxxx@127.0.0.1:5672/"},
		{"postgres://postgres@127.0.0.1:5432/test", "postgres://postgres@127.0.0.1:5432/test"},
		{"redis://:secret@127.0.0.1:6379/0", "redis://:xxxxx@127.0.0.1:6379/0"},
		{"postgres://u:p%zz/#@ss@h:5432/db", "postgres://u:xxxxx@h:5432/db"},
		{"postgres://u:12345/word@h:5432/db", "postgres://u:xxxxx@h:5432/db"},
		{"postgres://u:pw@h/db?sslmode=disable&password=other&x=1", "postgres://u:xxxxx@h/db?sslmode=disable&password=xxxxx&x=1"},
		{"postgres://h/db?application_name=a@b", "postgres://h/db?application_name=a@b"},
		{"postgres://u:pw@h/db?application_name=a@b", "postgres://u:xxxxx@h/db?application_name=a@b"},
		{"nats://s3cret@127.0.0.1:4222", "nats://xxxxx@127.0.0.1:4222"},
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"host=127.0.0.1 user=u password=se/cr#et dbname=d", "host=127.0.0.1 user=u password=xxxxx dbname=d"},
		{"host=h password='a b\\' c' sslpassword=k", "host=h password=xxxxx sslpassword=xxxxx"},
		{"user:pa/ss@broker:9092", "user:xxxxx@broker:9092"},
		{"broker:9092", "broker:9092"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := URL(tt.in); got != tt.want {
			t.Errorf("URL(%q): got %q want %q", tt.in, got, tt.want)
		}
	}
}

func TestHostilePasswordsNeverLeak(t *testing.T) {
	forms := []string{"amqp://user:%s@127.0.0.1:1/", "postgres://user:%s@127.0.0.1:1/db?sslmode=disable",
		"redis://user:%s@127.0.0.1:1/0", "nats://user:%s@127.0.0.1:1", "host=127.0.0.1 port=1 password=%s",
		"user:%s@127.0.0.1:1"}
	for _, pw := range hostile {
		for _, form := range forms {
			raw := fmt.Sprintf(form, pw)
			if got := URL(raw); strings.Contains(got, pw) {
				t.Errorf("URL(%q) = %q shows the password", raw, got)
			}
			// What url.Parse and friends would print.
			_, perr := url.Parse(raw)
			for _, msg := range []string{raw, fmt.Sprint(perr), "dial " + url.QueryEscape(raw), url.PathEscape(pw)} {
				if got := Message(msg, raw); strings.Contains(got, pw) {
					t.Errorf("Message(%q) = %q shows the password", msg, got)
				}
			}
			if strings.Contains(raw, "://") {
				if _, err := ParseURL(raw); err != nil && strings.Contains(err.Error(), pw) {
					t.Errorf("ParseURL(%q): %v shows the password", raw, err)
				}
			}
		}
	}
}

func TestParseURL(t *testing.T) {
	tests := []struct {
		in   string
		want string // error substring; empty: parses
	}{
		{"amqp://guest:guest@127.0.0.1:5672/", ""},
		{"amqp://guest:p%40ss@127.0.0.1:5672/", ""},
		{"amqp://user:p%zz@h:5672/", `url "amqp://user:xxxxx@h:5672/": invalid URL escape (percent-encode`},
		{"amqp://user:pass/word@h:5672/", `url "amqp://user:xxxxx@h:5672/": invalid port`},
		{"amqp://user:12345/word@h:5672/", `the '@' is not in the host part`},
		{"amqp://user:pass#word@h:5672/", `url "amqp://user:xxxxx@h:5672/"`},
		{"amqp://h:5672/", ""},
		{"postgres://user:p@ss@h:5432/db", `url "postgres://user:xxxxx@h:5432/db": an '@' in the user name or password`},
		{"postgres://user:pw@h:5432/db?application_name=a@b", ""},
		{"://nothing", "missing protocol scheme"},
	}
	for _, tt := range tests {
		_, err := ParseURL(tt.in)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("ParseURL(%q): %v", tt.in, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("ParseURL(%q): got %v want %q", tt.in, err, tt.want)
		}
	}
}

func TestErrorKeepsTheChain(t *testing.T) {
	sentinel := errors.New("levee/test: unreachable")
	raw := "amqp://u:pa/ss@h:1/"
	err := Error(fmt.Errorf("%w: dial %s", sentinel, raw), raw)
	if !errors.Is(err, sentinel) {
		t.Errorf("errors.Is lost the sentinel: %v", err)
	}
	if strings.Contains(err.Error(), "pa/ss") {
		t.Errorf("got %q", err)
	}
	if plain := errors.New("no credential here"); Error(plain, raw) != plain {
		t.Error("an error without credentials was wrapped")
	}
	if Error(nil, raw) != nil {
		t.Error("nil became non-nil")
	}
}
