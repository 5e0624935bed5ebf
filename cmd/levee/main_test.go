package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(good, []byte("handlers:\n  payments:\n    timeout: 2s\n    recover: true\n"), 0o600)
	os.WriteFile(bad, []byte("handlers:\n  payments:\n    timeout: 3x\n"), 0o600)
	many := filepath.Join(dir, "many.yaml")
	os.WriteFile(many, []byte("transport: {ack_deadline: 5s}\n"+
		"handlers:\n"+
		"  pay:\n"+
		"    timeout: 1s\n"+
		"    tiemout: 2s\n"+
		"    priority: {scheduler: gatway}\n"+
		"schedulers:\n"+
		"  gateway: {slots: 0}\n"), 0o600)
	hold := filepath.Join(dir, "hold.yaml")
	os.WriteFile(hold, []byte("transport: {kind: redis, redis: {addr: \"127.0.0.1:6379\"}, ack_deadline: 30s}\n"+
		"handlers:\n"+
		"  pay:\n"+
		"    timeout: 1s\n"+
		"    ratelimit: {rate: 5/s, max_wait: 1h}\n"), 0o600)
	badTransport := filepath.Join(dir, "transport.yaml")
	os.WriteFile(badTransport, []byte("transport:\n  kind: amqp\n  concurrency: -2\n"), 0o600)
	tests := []struct {
		name     string
		args     []string
		code     int
		out, err string
	}{
		{"valid", []string{"config", "check", good}, 0, "handler payments:\n  1. recover\n  2. timeout 2s\n", ""},
		{"invalid", []string{"config", "check", bad}, 1, "", bad + `:3: handlers.payments.timeout: "3x" is not a duration`},
		{"bad transport", []string{"config", "check", badTransport}, 1, "", badTransport + ":"},
		{"missing file", []string{"config", "check", filepath.Join(dir, "nope.yaml")}, 1, "", "no such file"},
		{"no args", nil, 2, "", "usage"},
		{"unknown command", []string{"frobnicate"}, 2, "", `unknown command "frobnicate"`},
		{"config without file", []string{"config", "check"}, 2, "", "usage"},
		{"every problem", []string{"config", "check", many}, 1, "", many + ": 4 problems\n" +
			many + `:1: transport.ack_deadline: levee/transport: invalid transport configuration: kind gochannel has no ack deadline (a message is never redelivered for being slow); remove the key` + "\n" +
			many + `:5: handlers.pay.tiemout: unknown key "tiemout"; did you mean "timeout"?` + " (known keys: batch, breaker, dedup, dlq, fleet, metrics, priority, ratelimit, recover, timeout, tracing)\n" +
			many + `:6: handlers.pay.priority.scheduler: "gatway" is not defined in the schedulers section; did you mean "gateway"? (defined: gateway)` + "\n" +
			many + `:8: schedulers.gateway.slots: "0" is not allowed`},
		{"hold above the deadline", []string{"config", "check", hold}, 1, "", hold + `:5: handlers.pay.ratelimit.max_wait: 1h0m0s is longer than the max hold (24s: config.Deps.MaxHold, which adapters/service sets to 80% of the transport's ack deadline (30s)`},
		{"settings and sources", []string{"config", "check", good}, 0, "handlers.payments.timeout  2s                                       " + good + ":3", ""},
		{"defaults", []string{"config", "check", good}, 0, "transport.concurrency      1                                        default", ""},
		{"help", []string{"--help"}, 0, "levee config check FILE", ""},
		{"help word", []string{"help"}, 0, "levee config check FILE", ""},
		{"config help", []string{"config", "--help"}, 0, "usage: levee config check FILE", ""},
		{"config check help", []string{"config", "check", "-h"}, 0, "usage: levee config check FILE", ""},
		{"dlq help", []string{"dlq", "--help"}, 0, "usage: levee dlq", ""},
		{"dlq subcommand help", []string{"dlq", "groups", "--help"}, 0, "usage: levee dlq", ""},
		{"dlq replay help", []string{"dlq", "replay", "-h"}, 0, "usage: levee dlq", ""},
		{"fleet help", []string{"fleet", "help"}, 0, "levee fleet [--config FILE", ""},
		{"fleet -h", []string{"fleet", "-h"}, 0, "levee fleet [--config FILE", ""},
		{"fleet --help", []string{"fleet", "--help"}, 0, "levee fleet [--config FILE", ""},
		{"fleet without command", []string{"fleet"}, 2, "", "levee fleet [--config FILE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(tt.args, &out, &errb)
			if code != tt.code {
				t.Fatalf("exit %d, want %d (stderr %q)", code, tt.code, errb.String())
			}
			if !strings.Contains(out.String(), tt.out) {
				t.Fatalf("stdout %q does not contain %q", out.String(), tt.out)
			}
			if !strings.Contains(errb.String(), tt.err) {
				t.Fatalf("stderr %q does not contain %q", errb.String(), tt.err)
			}
		})
	}
}
