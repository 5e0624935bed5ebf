package sizes

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// body returns n lines of statements.
func body(n int) string { return strings.Repeat("\t_ = 0\n", n) }

func TestScan(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("p/long.go", "package p\n\nfunc long() {\n"+body(MaxFuncLines-1)+"}\n\n"+
		"// explained does one thing. Not split: it is one table.\nfunc (x *T) explained() {\n"+body(MaxFuncLines)+"}\n\n"+
		"type T struct{}\n\nfunc short() {\n"+body(5)+"}\n"+strings.Repeat("\n", MaxFileLines))
	write("p/long_test.go", "package p\n\nfunc testLong() {\n"+body(200)+"}\n")
	write("p/testdata/x.go", "package x\n\nfunc skipped() {\n"+body(200)+"}\n")
	write("p/explained.go", "// Not split: one generated table.\n\npackage p\n\nvar table = 0\n"+strings.Repeat("\n", MaxFileLines))
	write("p/fine.go", "package p\n\nfunc fine() {\n"+body(MaxFuncLines-2)+"}\n") // exactly MaxFuncLines

	files, funcs, err := Scan(dir)
	if err != nil {
		t.Fatal(err)
	}
	// Largest first: long.go has no reason (its function's does not count).
	if len(files) != 2 || files[0].File != "p/long.go" || files[0].Reason != "" ||
		files[1].File != "p/explained.go" || files[1].Reason != "Not split: one generated table." {
		t.Fatalf("files: got %v, want p/long.go without a reason and p/explained.go with one", files)
	}
	if len(funcs) != 2 {
		t.Fatalf("funcs: got %v, want long and (T).explained", funcs)
	}
	got := map[string]Finding{}
	for _, f := range funcs {
		got[f.Func] = f
	}
	if f := got["long"]; f.Lines != MaxFuncLines+1 || f.Reason != "" || f.Line != 3 {
		t.Errorf("long: got %+v, want %d lines from line 3, no reason", f, MaxFuncLines+1)
	}
	if f := got["(T).explained"]; f.Lines != MaxFuncLines+2 || !strings.Contains(f.Reason, "Not split: it is one table.") {
		t.Errorf("(T).explained: got %+v, want %d lines with its reason", f, MaxFuncLines+2)
	}
}

func TestScanParseError(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bad.go"), []byte("package p\nfunc {"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Scan(dir); err == nil {
		t.Fatal("got no error for a file that does not parse")
	}
}

// Every module of the repository keeps STYLE.md rule 15: each file over
// MaxFileLines and each function over MaxFuncLines says why in a comment.
func TestRepositoryExplainsLongCode(t *testing.T) {
	files, funcs, err := Scan(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range append(files, funcs...) {
		if f.Reason == "" {
			t.Errorf("%s: split it by concept, or say why not in a comment (%q)", f, Markers[0])
		}
	}
}

// docs/ARCHITECTURE.md states the limits; they are the constants.
func TestArchitectureStatesTheLimits(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "ARCHITECTURE.md"))
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("lists files over %d lines and functions over %d", MaxFileLines, MaxFuncLines)
	if !strings.Contains(string(doc), want) {
		t.Fatalf("docs/ARCHITECTURE.md lacks %q", want)
	}
}
