package nats

import "testing"

func TestStreamName(t *testing.T) {
	for topic, want := range map[string]string{
		"orders":          "orders",
		"orders.dlq":      "orders_dlq",
		"a*b>c/d\\e f\tg": "a_b_c_d_e_f_g",
	} {
		if got := streamName(topic); got != want {
			t.Errorf("streamName(%q): got %q, want %q", topic, got, want)
		}
	}
}
