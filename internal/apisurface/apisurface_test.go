package apisurface

import (
	"strings"
	"testing"
)

func TestDir(t *testing.T) {
	got, err := Dir("testdata/p")
	if err != nil {
		t.Fatal(err)
	}
	want := Count{Funcs: 1, Types: 2, Consts: 1, Vars: 1, Methods: 2, Fields: 1}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if got.Total() != 8 {
		t.Fatalf("Total: got %d, want 8", got.Total())
	}
	if tb := Table(map[string]Count{"p": got}); !strings.Contains(tb, "| p | 8 | 1 | 2 | 1 | 1 | 2 | 1 |") {
		t.Fatalf("Table: got\n%s", tb)
	}
}

func TestDirErrors(t *testing.T) {
	if _, err := Dir("testdata/none"); err == nil {
		t.Fatal("got no error for a missing directory")
	}
	if _, err := Dir("testdata"); err == nil {
		t.Fatal("got no error for a directory without Go files")
	}
}
