package testkit

// HostileYAMLValues are scalars a fuzz target sets configuration keys to:
// every field type's edge (negative, zero, huge and overflowing numbers,
// durations and rates past int64, NaN and infinities, empty rates and
// percentages), the wrong type (a list, a map, a tag), YAML's own
// spellings (null, anchors), variables (X is the one a target sets), the
// enum values Levee's sections take, and strings with control
// characters. Each is one line of YAML, to follow "key: ".
var HostileYAMLValues = []string{
	"0", "-1", "1", "3", "-0", "9223372036854775807", "9223372036854775808", "-9223372036854775808",
	"2147483648", "4294967296", "1e308", "-1e308", "1e400", "1e-320", ".nan", ".inf", "-.inf", "NaN",
	"0x7fffffff", "0o17", "1_000", "~", "null", "true", "false", "''", `""`, "' '",
	"1ns", "-1s", "0s", "1s1", "1.5h", "2562047h", "2562048h", "9999999999999999999h", "1e9h", "1µs", "1d",
	"10/s", "-1/s", "0/s", "1e308/s", "1e-320/s", "NaN/s", "inf/s", "5/min", "1/0s", "/s", "1/", "1//s", "1/s/s", "1/-1s",
	"10%", "-10%", "0%", "100%", "150%", "NaN%", "1e400%", "%", "%%", "0.5",
	"[1, 2]", "{a: 1}", "[]", "{}", "&a 1", "!!binary aGVsbG8=", "!!int 1.5", "!!float x", "!!str 5", "!!map {}",
	"${X}", "${X:-1s}", "${X:-}", "${", "${}", "$${X}",
	"shared", "local", "wait", "reject", "memory", "redis", "postgres", "tracecontext", "[tracecontext, baggage, b3]",
	"{metadata: k}", "{metadata: ''}", "{json_pointer: /id}", "{json_pointer: '~2'}", "{metadata: k, json_pointer: /a}",
	"{a: {rate: 1/s}}", "{'': {rate: 1/s}}", `"\x00"`, `"\xff\xfe"`, `"\uFFFE"`, `"a\tb"`, `"line\nbreak"`,
	"redis://127.0.0.1:1/0", "postgres://127.0.0.1:1/x", "::", "s", "b", "h",
	"amqp://u:Sekr3t@127.0.0.1:1/", "nats://u:Sekr3t@127.0.0.1:1", "redis://:Sekr3t@127.0.0.1:1/99", "postgres://u:Sekr3t@127.0.0.1:1/x?sslmode=bogus",
	"gochannel", "amqp", "kafka", "nats", "classic", "quorum", "stream", "[127.0.0.1:1, '']", "http://[::1", "%zz",
}
