package untrusted

import "testing"

func TestVisible(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"orders", "orders"},
		{"pay\u202emoc.exe", `pay\u202emoc.exe`},
		{"\u2066a\u2069\u200f\u0085", `\u2066a\u2069\u200f\u0085`},
		{"line\u2028break é 日本", `line\u2028break é 日本`},
		{"bad \xff byte", "bad \xff byte"}, // not Hidden: left to the caller
		{"\u202ebad \xff", `\u202ebad ` + "\xff"},
	} {
		if got := Visible(tt.in); got != tt.want {
			t.Errorf("Visible(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
