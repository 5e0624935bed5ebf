package validate_test

import (
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/dlq"
)

// TestOneRuleIsOneGroup: the dead letters of messages that fail one schema
// rule were grouped by the error message, which carries the payload's
// values and property names ("'alice' does not match pattern",
// "additional properties 'zzq' not allowed"), so a producer's payloads
// made every letter a dead-letter group of its own. The fingerprint now
// hashes the topic and the failing schema keywords (Error.FailureKey).
func TestOneRuleIsOneGroup(t *testing.T) {
	r := loadSMS(t)
	dead := &recPub{}
	router, err := dlq.New(dead, dlq.WithTopic("sms.send.dlq"))
	if err != nil {
		t.Fatal(err)
	}
	mw, err := r.MiddlewareFor("sms.send")
	if err != nil {
		t.Fatal(err)
	}
	h := router.Middleware(mw(func(*message.Message) ([]*message.Message, error) { return nil, nil }))
	groups := [][]string{
		{`{"to":"alice","body":"hi"}`, `{"to":"bob","body":"hello"}`, `{"to":"+1","body":"x"}`},
		{`{"to":"+4915112345678","body":"hi","zzq":1}`, `{"to":"+4915112345678","body":"hi","yyw":true}`},
		{`{"to":"alice","body":""}`, `{"to":"carol","body":""}`},
		{`{"to":`, `{"to":}`, `[1,`},
	}
	seen := map[string]int{}
	for g, payloads := range groups {
		var fp string
		for _, p := range payloads {
			dead.got = nil
			if _, err := h(message.NewMessage("m", []byte(p))); err != nil || len(dead.got) != 1 {
				t.Fatalf("%s: got %v and %d dead letters, want one", p, err, len(dead.got))
			}
			got := dead.got[0].Metadata[dlq.KeyFingerprint]
			if fp == "" {
				fp = got
			} else if got != fp {
				t.Errorf("%s: fingerprint %s, want %s as the other letters of its rule", p, got, fp)
			}
		}
		if other, ok := seen[fp]; ok {
			t.Errorf("rules %d and %d share fingerprint %s", other, g, fp)
		}
		seen[fp] = g
	}
}
