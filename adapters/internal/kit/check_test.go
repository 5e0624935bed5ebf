package kit

import (
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
)

func TestRetryAfterOf(t *testing.T) {
	for v, want := range map[string]string{"": "0s", "1s": "1s", "junk": "0s", "-1s": "0s",
		"2h": "1h0m0s", "876000h": "1h0m0s"} { // capped at levee.MaxRetryAfter
		msg := message.NewMessage("u", nil)
		if v != "" {
			msg.Metadata.Set(levee.KeyRetryAfter, v)
		}
		if got := RetryAfterOf(msg).String(); got != want {
			t.Errorf("%q: got %s, want %s", v, got, want)
		}
	}
}

func TestStripControl(t *testing.T) {
	for _, keep := range []bool{false, true} {
		md := message.Metadata{levee.KeyDeliveryCount: "3", levee.KeyRetryAfter: "1s", levee.KeyRedeliverAt: "1", "k": "v",
			"_watermill_message_uuid": "x", "_watermill_other": "y"}
		if keep {
			StripControl(md, levee.KeyDeliveryCount)
		} else {
			StripControl(md)
		}
		want := message.Metadata{"k": "v"}
		if keep {
			want[levee.KeyDeliveryCount] = "3"
		}
		if len(md) != len(want) || md["k"] != "v" || md[levee.KeyDeliveryCount] != want[levee.KeyDeliveryCount] {
			t.Errorf("keepCount %v: got %v, want %v", keep, md, want)
		}
	}
}

func TestCheckAddresses(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{{"h:6379", true}, {"nohost", false}, {":1", false}, {"h:", false}, {"u@h:1", false}} {
		if err := CheckHostPort(tc.addr); (err == nil) != tc.ok {
			t.Errorf("CheckHostPort(%q): got %v, want ok %v", tc.addr, err, tc.ok)
		}
	}
	for _, tc := range []struct {
		url string
		ok  bool
	}{{"amqp://h/", true}, {"http://h/", false}, {"amqp:///", false}} {
		if err := CheckURL(tc.url, "amqp", "amqps"); (err == nil) != tc.ok {
			t.Errorf("CheckURL(%q): got %v, want ok %v", tc.url, err, tc.ok)
		}
	}
}
