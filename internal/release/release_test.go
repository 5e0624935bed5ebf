package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// testVersion is the version the tests release, in copies of the
// repository only.
const testVersion = "v0.99.0"

// TestReleaseInstallsFromTags releases a copy of the repository at
// testVersion, serves the tagged modules from a file-based module proxy as
// the Go module proxy would, and runs the README's install commands against
// it in a new module, as a user would the day the tags are pushed: go get of
// the core and the adapters, go install of the CLI, a program importing
// both, and the installed levee checking a file.
func TestReleaseInstallsFromTags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI and a program from a module proxy of a release")
	}
	repo, tags := release(t)
	env := proxyEnv(t, serveTags(t, repo, tags))

	// The release commit still builds as a workspace, with what the
	// module cache holds.
	run(t, repo, []string{"GOFLAGS=", "GOPROXY=off"}, "go", "list", "-deps", "-test", "github.com/levee-dev/levee/...")
	// Each published module alone loads its packages and their tests from
	// the tags without a change to its go.mod or go.sum (-mod=readonly):
	// every hash in go.sum is there and matches what the proxy serves.
	for _, tag := range tags {
		run(t, filepath.Join(repo, tag.Dir), env, "go", "list", "-mod=readonly", "-deps", "-test", "./...")
	}

	// A user who needs only the transports: the adapters' requirement of
	// the core must resolve by itself.
	alone := newUser(t, env)
	run(t, alone, env, "go", "get", "github.com/levee-dev/levee/adapters@latest")
	buildAndRun(t, alone, env, []string{"github.com/levee-dev/levee/adapters"}, "strings.Join(adapters.Kinds(), \",\")", "gochannel,amqp,kafka")

	// The README's user.
	user := newUser(t, env)
	for _, args := range installCommands(t) {
		run(t, user, env, args[0], args[1:]...)
	}
	buildAndRun(t, user, env, []string{"github.com/levee-dev/levee", "github.com/levee-dev/levee/adapters"},
		"levee.ErrInvalidConfig, strings.Join(adapters.Kinds(), \",\")", "invalid configuration gochannel,amqp,kafka")
	checkCLI(t, user, filepath.Join(envValue(env, "GOBIN"), "levee"))
}

// TestReleaseTagsResolveFromGit lets the go command itself fetch the
// released modules from the tags of a git repository, as the Go module
// proxy does on its first request for a version (GOPRIVATE makes it go to
// the repository, which a git url.insteadOf maps to the local copy): it
// finds each module at its tag and builds its zip, whose hash must be the
// one the release wrote in the go.sum of the modules requiring it; then a
// user gets the adapters alone and installs the CLI at the version.
func TestReleaseTagsResolveFromGit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI from the tags of a release")
	}
	repo, tags := release(t)
	config := filepath.Join(t.TempDir(), "gitconfig")
	writeFile(t, config, "[url \"file://"+filepath.ToSlash(repo)+"\"]\n\tinsteadOf = https://github.com/levee-dev/levee\n"+
		"[protocol \"file\"]\n\tallow = always\n")
	env := append(proxyEnv(t, t.TempDir()), "GIT_CONFIG_GLOBAL="+config, "GIT_CONFIG_NOSYSTEM=1",
		"GOPRIVATE=github.com/levee-dev/levee")

	// Each published module alone, its siblings fetched from their tags:
	// the go command checks their zips' hashes against the go.sum.
	for _, tag := range tags {
		run(t, filepath.Join(repo, tag.Dir), env, "go", "list", "-mod=readonly", "-deps", "-test", "./...")
	}
	alone := newUser(t, env)
	run(t, alone, env, "go", "get", "github.com/levee-dev/levee/adapters@"+testVersion)
	buildAndRun(t, alone, env, []string{"github.com/levee-dev/levee/adapters"}, "strings.Join(adapters.Kinds(), \",\")", "gochannel,amqp,kafka")
	run(t, alone, env, "go", "install", "github.com/levee-dev/levee/cmd/levee@"+testVersion)
	checkCLI(t, alone, filepath.Join(envValue(env, "GOBIN"), "levee"))
}

// release releases a copy of the checkout at testVersion: Prepare, the
// release commit and its tags. It returns the copy's folder and the tags.
func release(t *testing.T) (string, []Tag) {
	t.Helper()
	repo := checkoutCopy(t)
	tags, err := Prepare(repo, testVersion)
	if err != nil {
		t.Fatal(err)
	}
	commit(t, repo, "release "+testVersion)
	for _, tag := range tags {
		run(t, repo, nil, "git", "tag", tag.Name)
	}
	return repo, tags
}

// newUser returns the folder of a new module example.com/user.
func newUser(t *testing.T, env []string) string {
	t.Helper()
	dir := t.TempDir()
	run(t, dir, env, "go", "mod", "init", "example.com/user")
	return dir
}

// buildAndRun builds, in the module dir, a program importing imports that
// prints args, runs it and checks that its output has want.
func buildAndRun(t *testing.T, dir string, env, imports []string, args, want string) {
	t.Helper()
	writeFile(t, filepath.Join(dir, "main.go"), "package main\n\nimport (\n\t\"fmt\"\n\t\"strings\"\n\n\t\""+
		strings.Join(imports, "\"\n\t\"")+"\"\n)\n\nfunc main() { fmt.Println("+args+") }\n")
	run(t, dir, env, "go", "build", "-o", "app", ".")
	if out := run(t, dir, nil, filepath.Join(dir, "app")); !strings.Contains(out, want) {
		t.Errorf("the program importing %s printed %q, want %q", imports, out, want)
	}
}

// checkCLI runs the installed levee binary: its usage, and config check of
// a small file.
func checkCLI(t *testing.T, dir, levee string) {
	t.Helper()
	if out := run(t, dir, nil, levee, "--help"); !strings.Contains(out, "levee config check FILE") {
		t.Errorf("levee --help printed no usage of config check:\n%s", out)
	}
	writeFile(t, filepath.Join(dir, "levee.yaml"), "handlers:\n  payments:\n    dlq:\n      retry: {max_attempts: 3}\n")
	if out := run(t, dir, nil, levee, "config", "check", "levee.yaml"); !strings.Contains(out, "levee.yaml: ok") ||
		!strings.Contains(out, "handlers.payments.dlq.retry.max_attempts  3") {
		t.Errorf("levee config check printed:\n%s", out)
	}
}

// installCommands returns the commands of the README's Install section.
func installCommands(t *testing.T) [][]string {
	t.Helper()
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(data), "\n## Install\n")
	_, block, _ := strings.Cut(section, "```sh\n")
	block, _, _ = strings.Cut(block, "```")
	var cmds [][]string
	for _, line := range strings.Split(block, "\n") {
		line, _, _ = strings.Cut(line, "#")
		if f := strings.Fields(line); len(f) > 0 {
			cmds = append(cmds, f)
		}
	}
	want := [][]string{
		{"go", "get", "github.com/levee-dev/levee@latest"},
		{"go", "get", "github.com/levee-dev/levee/adapters@latest"},
		{"go", "install", "github.com/levee-dev/levee/cmd/levee@latest"},
	}
	if !slices.EqualFunc(cmds, want, slices.Equal) {
		t.Fatalf("the README's Install section has the commands %q, this test runs %q: update it", cmds, want)
	}
	return cmds
}

// envValue returns the value of key in env, a list of key=value.
func envValue(env []string, key string) string {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
