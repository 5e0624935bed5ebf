package config

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

// A file larger than any levee.yaml (a log file given by mistake, a
// generated file gone wrong) is refused before it is parsed: a 50 MB one
// took 42s and 2.3 GB of memory to be refused. A file of too many values
// without aliases says so, not that its aliases expand too far.
func TestFileBounds(t *testing.T) {
	big := []byte("handlers: {}\n# " + strings.Repeat("x", MaxFileSize) + "\n")
	_, err := Parse("levee.yaml", big, nil)
	if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "levee.yaml: the file is") || !strings.Contains(err.Error(), "MiB") {
		t.Errorf("a file over MaxFileSize: got %v", err)
	}
	var b strings.Builder
	b.WriteString("handlers:\n")
	for i := 0; i < MaxExpandedNodes/4; i++ {
		fmt.Fprintf(&b, "  h%d: {timeout: 1s}\n", i)
	}
	if b.Len() > MaxFileSize {
		t.Fatalf("the many-values file is %d bytes, over MaxFileSize", b.Len())
	}
	_, err = Parse("levee.yaml", []byte(b.String()), nil)
	if !errors.Is(err, ErrInvalidConfig) || strings.Contains(err.Error(), "aliases") || !strings.Contains(err.Error(), "more than 100000 values") {
		t.Errorf("many values, no alias: got %v", err)
	}
}

// TestFileBoundsDocumented: config/doc.go states both bounds.
func TestFileBoundsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../config/doc.go")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("A file is at most %d MiB and\n// %d values", MaxFileSize>>20, MaxExpandedNodes)
	if !strings.Contains(string(doc), want) {
		t.Errorf("config/doc.go does not say %q", want)
	}
}

// A path that is not a regular file (a device, a pipe, /dev/stdin) is
// read at most MaxFileSize bytes too: /dev/zero was read until the process
// ran out of memory.
func TestLoadEndlessFile(t *testing.T) {
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip("no /dev/zero")
	}
	_, err := Load("/dev/zero")
	if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "/dev/zero: the file is over 4 MiB") {
		t.Fatalf("got %v", err)
	}
}
