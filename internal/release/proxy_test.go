package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/zip"
)

// checkoutCopy copies the repository's files that git would commit (tracked
// and untracked but not ignored, with their current contents) into a fresh
// git repository with one commit, and returns its folder.
func checkoutCopy(t *testing.T) string {
	t.Helper()
	src, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "levee")
	list := run(t, src, nil, "git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	for _, name := range strings.Split(list, "\x00") {
		info, err := os.Lstat(filepath.Join(src, name))
		if name == "" || os.IsNotExist(err) || (err == nil && !info.Mode().IsRegular()) {
			continue // deleted in the checkout, or not a file git would archive
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dst, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, name), data, info.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	run(t, dst, nil, "git", "init", "-q")
	commit(t, dst, "development")
	return dst
}

// commit commits every change in the repository dir.
func commit(t *testing.T, dir, message string) {
	t.Helper()
	run(t, dir, nil, "git", "add", "-A")
	run(t, dir, gitIdentity, "git", "-c", "commit.gpgsign=false", "commit", "-q", "--no-verify", "-m", message)
}

var gitIdentity = []string{
	"GIT_AUTHOR_NAME=release test", "GIT_AUTHOR_EMAIL=release@example.com",
	"GIT_COMMITTER_NAME=release test", "GIT_COMMITTER_EMAIL=release@example.com",
}

// serveTags writes a file-based module proxy (GOPROXY=file://dir) holding
// each tag's module as the Go module proxy builds it from the tag, and
// returns its folder.
func serveTags(t *testing.T, repo string, tags []Tag) string {
	t.Helper()
	proxy := t.TempDir()
	for _, tag := range tags {
		escaped, err := module.EscapePath(tag.Path)
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(proxy, filepath.FromSlash(escaped), "@v")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		subdir, gomod := "", "go.mod"
		if tag.Dir != "." {
			subdir, gomod = tag.Dir, tag.Dir+"/go.mod"
		}
		var z bytes.Buffer
		m := module.Version{Path: tag.Path, Version: tag.Version}
		if err := zip.CreateFromVCS(&z, m, repo, tag.Name, subdir); err != nil {
			t.Fatalf("module zip of tag %s: %v", tag.Name, err)
		}
		info, err := json.Marshal(map[string]any{"Version": tag.Version, "Time": time.Now().UTC()})
		if err != nil {
			t.Fatal(err)
		}
		files := map[string]string{
			tag.Version + ".zip":  z.String(),
			tag.Version + ".mod":  run(t, repo, nil, "git", "show", tag.Name+":"+gomod),
			tag.Version + ".info": string(info),
			"list":                tag.Version + "\n",
		}
		for name, content := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return proxy
}

// proxyEnv is the environment of a go command that sees Levee only through
// the module proxy in folder proxy, and every other module through the
// local module cache (no network), with a module cache and GOBIN of its own.
// A module the local cache lacks (on a fresh machine, one that only the
// release's module graph, not the workspace's, reads) comes from the
// environment's own GOPROXY, when it has one.
func proxyEnv(t *testing.T, proxy string) []string {
	t.Helper()
	cache := strings.TrimSpace(run(t, ".", nil, "go", "env", "GOMODCACHE"))
	proxies := "file://" + filepath.ToSlash(proxy) + ",file://" + filepath.ToSlash(filepath.Join(cache, "cache", "download"))
	if own := strings.TrimSpace(run(t, ".", nil, "go", "env", "GOPROXY")); own != "" && own != "off" {
		proxies += "," + own
	}
	tmp := t.TempDir()
	return []string{
		"GOWORK=off", "GOTOOLCHAIN=local", "GOSUMDB=off",
		"GOPRIVATE=", "GONOPROXY=", "GONOSUMDB=", "GOINSECURE=",
		"GOPROXY=" + proxies,
		// -modcacherw: t.TempDir can remove the module cache; -trimpath:
		// the build cache serves the same packages again from another
		// module cache folder.
		"GOFLAGS=-modcacherw -trimpath",
		"GOMODCACHE=" + filepath.Join(tmp, "mod"),
		"GOBIN=" + filepath.Join(tmp, "bin"),
	}
}

// run runs a command in dir with env added to this process's environment
// and returns its standard output; it fails the test if the command fails.
func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	out, err := try(dir, env, name, args...)
	if err != nil {
		t.Fatalf("%s %s (in %s): %v", name, strings.Join(args, " "), dir, err)
	}
	return out
}

// try runs a command as run does and returns its error with its standard
// error output.
func try(dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return out.String(), &cmdError{err: err, stderr: stderr.String()}
	}
	return out.String(), nil
}

type cmdError struct {
	err    error
	stderr string
}

func (e *cmdError) Error() string { return e.err.Error() + "\n" + e.stderr }
