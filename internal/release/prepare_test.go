package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/mod/modfile"
)

func TestCheckVersion(t *testing.T) {
	for _, v := range []string{"v0.1.0", "v1.2.3", "v0.4.0-rc.1"} {
		if err := checkVersion(v); err != nil {
			t.Errorf("%s: %v", v, err)
		}
	}
	for _, v := range []string{"0.1.0", "v0.1", "v1", "v0.1.0+build", "v2.0.0", "latest", ""} {
		if err := checkVersion(v); err == nil {
			t.Errorf("%q: accepted", v)
		}
	}
}

// TestPrepareReleaseForm checks the go.mod and go.sum files Prepare writes:
// the published modules require their siblings at the version, with no
// replace, and hold the siblings' go.mod hashes; the other modules keep
// their development form; the tags are the ones Go's multi-module
// layout needs.
func TestPrepareReleaseForm(t *testing.T) {
	repo := checkoutCopy(t)
	before := map[string]string{}
	for _, dir := range []string{"examples", "bench", "chaos", "internal/telemetrytest", "internal/release"} {
		before[dir] = readFile(t, filepath.Join(repo, dir, "go.mod")) + readFile(t, filepath.Join(repo, dir, "go.sum"))
	}
	tags, err := Prepare(repo, "v0.7.1")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tag := range tags {
		names = append(names, tag.Name)
	}
	if want := []string{"v0.7.1", "adapters/v0.7.1", "cmd/v0.7.1"}; !slices.Equal(names, want) {
		t.Errorf("tags %q, want %q", names, want)
	}
	for dir, was := range before {
		if now := readFile(t, filepath.Join(repo, dir, "go.mod")) + readFile(t, filepath.Join(repo, dir, "go.sum")); now != was {
			t.Errorf("%s: Prepare changed the go.mod or go.sum of a module that is not published", dir)
		}
	}
	siblings := map[string][]string{
		".":        nil,
		"adapters": {"github.com/levee-dev/levee"},
		"cmd":      {"github.com/levee-dev/levee", "github.com/levee-dev/levee/adapters"},
	}
	for dir, want := range siblings {
		checkReleaseForm(t, repo, dir, want)
	}
}

// checkReleaseForm checks the release form of the published module in
// repo's folder dir, whose sibling requirements are siblings.
func checkReleaseForm(t *testing.T, repo, dir string, siblings []string) {
	t.Helper()
	data := readFile(t, filepath.Join(repo, dir, "go.mod"))
	f, err := modfile.Parse(dir+"/go.mod", []byte(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Replace) > 0 {
		t.Errorf("%s/go.mod: replace left: %v", dir, f.Replace[0].Old)
	}
	sum := readFile(t, filepath.Join(repo, dir, "go.sum"))
	var got []string
	for _, r := range f.Require {
		if !strings.HasPrefix(r.Mod.Path, "github.com/levee-dev/levee") {
			continue
		}
		got = append(got, r.Mod.Path)
		if r.Mod.Version != "v0.7.1" {
			t.Errorf("%s/go.mod requires %s", dir, r.Mod)
		}
		sibling := strings.TrimPrefix(strings.TrimPrefix(r.Mod.Path, "github.com/levee-dev/levee"), "/")
		modSum, err := GoModSum([]byte(readFile(t, filepath.Join(repo, sibling, "go.mod"))))
		if err != nil {
			t.Fatal(err)
		}
		if line := r.Mod.Path + " v0.7.1/go.mod " + modSum + "\n"; !strings.Contains(sum, line) {
			t.Errorf("%s/go.sum lacks %q", dir, line)
		}
		if !strings.Contains(sum, r.Mod.Path+" v0.7.1 h1:") {
			t.Errorf("%s/go.sum has no hash of %s v0.7.1", dir, r.Mod.Path)
		}
	}
	if !slices.Equal(got, siblings) {
		t.Errorf("%s/go.mod requires the sibling modules %q, want %q", dir, got, siblings)
	}
}

// TestPrepareRefusesUncommittedChanges: the release commit is what Prepare
// hashed, so a change it would sweep into that commit is refused.
func TestPrepareRefusesUncommittedChanges(t *testing.T) {
	repo := checkoutCopy(t)
	name := filepath.Join(repo, "adapters", "doc.go")
	if err := os.WriteFile(name, []byte(readFile(t, name)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Prepare(repo, "v0.7.1"); err == nil || !strings.Contains(err.Error(), "uncommitted changes") {
		t.Fatalf("Prepare with a changed adapters/doc.go: %v, want an uncommitted changes error", err)
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
