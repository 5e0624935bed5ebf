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
