package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	"golang.org/x/mod/sumdb/dirhash"
	"golang.org/x/mod/zip"
)

// published are the folders of the modules a user gets with go get or go
// install, in dependency order: each requires only modules before it. The
// workspace's other modules (examples, bench, chaos, internal/telemetrytest,
// internal/release) are not published: nobody requires them, and they keep
// their development form.
var published = []string{".", "adapters", "cmd"}

// Tag is a git tag a release creates: module Path at Version, from the
// repository folder Dir.
type Tag struct {
	Name, Path, Version, Dir string
}

// Prepare rewrites, in the git checkout root, the go.mod and go.sum of every
// published module into its release form for version: each requirement of a
// sibling module is at version, no replace directive is left, and go.sum
// holds the sibling modules' hashes as the module proxy will serve them from
// the tags. It returns the tags to create on the commit of the result. The
// checkout must have no uncommitted change to a tracked file.
func Prepare(root, version string) ([]Tag, error) {
	if err := checkVersion(version); err != nil {
		return nil, err
	}
	if out, err := git(root, nil, "status", "--porcelain", "--untracked-files=no"); err != nil {
		return nil, err
	} else if out != "" {
		return nil, fmt.Errorf("%s has uncommitted changes; commit or stash them first:\n%s", root, out)
	}
	paths, err := workspaceModules(root)
	if err != nil {
		return nil, err
	}
	var tags []Tag
	sums := map[string][]string{} // module path -> its go.sum lines at version
	for _, dir := range published {
		mod, err := rewrite(root, dir, version, paths, sums)
		if err != nil {
			return nil, err
		}
		lines, err := moduleSums(root, dir, module.Version{Path: mod, Version: version})
		if err != nil {
			return nil, err
		}
		sums[mod] = lines
		tags = append(tags, Tag{Name: tagName(dir, version), Path: mod, Version: version, Dir: dir})
	}
	return tags, nil
}

// checkVersion accepts a canonical semantic version of major 0 or 1 (the
// module paths have no /vN suffix), with an optional pre-release.
func checkVersion(v string) error {
	if !semver.IsValid(v) || semver.Canonical(v) != v {
		return fmt.Errorf("version %q is not of the form vX.Y.Z (or vX.Y.Z-pre)", v)
	}
	if m := semver.Major(v); m != "v0" && m != "v1" {
		return fmt.Errorf("version %s: a major version above v1 needs a /%s suffix on every module path", v, m)
	}
	return nil
}

func tagName(dir, version string) string {
	if dir == "." {
		return version
	}
	return dir + "/" + version
}

// workspaceModules maps each module path of root's go.work to its folder.
func workspaceModules(root string) (map[string]string, error) {
	data, err := os.ReadFile(filepath.Join(root, "go.work"))
	if err != nil {
		return nil, err
	}
	work, err := modfile.ParseWork("go.work", data, nil)
	if err != nil {
		return nil, err
	}
	paths := map[string]string{}
	for _, u := range work.Use {
		f, err := readModFile(root, u.Path)
		if err != nil {
			return nil, err
		}
		paths[f.Module.Mod.Path] = path.Clean(u.Path)
	}
	return paths, nil
}

func readModFile(root, dir string) (*modfile.File, error) {
	name := filepath.Join(root, dir, "go.mod")
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	return modfile.Parse(name, data, nil)
}

// rewrite puts dir's go.mod and go.sum in release form and returns its
// module path. sums holds the go.sum lines of the published modules done.
func rewrite(root, dir, version string, paths map[string]string, sums map[string][]string) (string, error) {
	f, err := readModFile(root, dir)
	if err != nil {
		return "", err
	}
	mod := f.Module.Mod.Path
	var siblings []string
	for _, r := range f.Require {
		if _, ok := paths[r.Mod.Path]; !ok {
			continue
		}
		if _, ok := sums[r.Mod.Path]; !ok {
			return "", fmt.Errorf("%s requires %s, which is not a published module released before it", mod, r.Mod.Path)
		}
		siblings = append(siblings, r.Mod.Path)
	}
	for _, p := range siblings {
		if err := f.AddRequire(p, version); err != nil {
			return "", err
		}
	}
	for _, r := range slices.Clone(f.Replace) {
		if _, ok := paths[r.Old.Path]; !ok {
			return "", fmt.Errorf("%s: replace %s: go install refuses a published module with a replace directive", mod, r.Old.Path)
		}
		if err := f.DropReplace(r.Old.Path, r.Old.Version); err != nil {
			return "", err
		}
	}
	f.Cleanup()
	data, err := f.Format()
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(root, dir, "go.mod"), data, 0o644); err != nil {
		return "", err
	}
	return mod, writeSums(filepath.Join(root, dir, "go.sum"), siblings, sums)
}

// writeSums replaces the siblings' lines of the go.sum file name by their
// release hashes, in the go command's order (module.Sort).
func writeSums(name string, siblings []string, sums map[string][]string) error {
	data, err := os.ReadFile(name)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	lines := strings.Split(string(data), "\n")
	for _, p := range siblings {
		lines = append(lines, sums[p]...)
	}
	byKey := map[module.Version]string{}
	var keys []module.Version
	for _, line := range lines {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		k := module.Version{Path: f[0], Version: f[1]}
		if _, dup := byKey[k]; !dup {
			keys = append(keys, k)
		}
		byKey[k] = line // a sibling's release line comes last and wins
	}
	module.Sort(keys)
	var out strings.Builder
	for _, k := range keys {
		out.WriteString(byKey[k] + "\n")
	}
	return os.WriteFile(name, []byte(out.String()), 0o644)
}

// moduleSums returns the two go.sum lines of the module in root's folder
// dir at m.Version: the hash of its zip and of its go.mod, both computed
// from the tracked files' current contents the way the go command computes
// them from a git tag (git archive, nested modules left out, the root's
// LICENSE in a module that has none).
func moduleSums(root, dir string, m module.Version) ([]string, error) {
	tree, err := worktreeTree(root)
	if err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp("", "levee-release-*.zip")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	subdir := ""
	if dir != "." {
		subdir = dir
	}
	err = zip.CreateFromVCS(tmp, m, root, tree, subdir)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	zipSum, err := dirhash.HashZip(tmp.Name(), dirhash.Hash1)
	if err != nil {
		return nil, err
	}
	gomod, err := os.ReadFile(filepath.Join(root, dir, "go.mod"))
	if err != nil {
		return nil, err
	}
	modSum, err := GoModSum(gomod)
	if err != nil {
		return nil, err
	}
	return []string{
		m.Path + " " + m.Version + " " + zipSum,
		m.Path + " " + m.Version + "/go.mod " + modSum,
	}, nil
}

// GoModSum is the go.sum hash of a go.mod file's contents.
func GoModSum(gomod []byte) (string, error) {
	return dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(gomod)), nil
	})
}

// worktreeTree writes a git tree of root's tracked files with their current
// contents (through a private index, leaving the checkout's own untouched)
// and returns its id, which git archive takes as a revision.
func worktreeTree(root string) (string, error) {
	dir, err := os.MkdirTemp("", "levee-release-index-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	env := []string{"GIT_INDEX_FILE=" + filepath.Join(dir, "index")}
	if _, err := git(root, env, "read-tree", "HEAD"); err != nil {
		return "", err
	}
	if _, err := git(root, env, "add", "--update", "--", "."); err != nil {
		return "", err
	}
	return git(root, env, "write-tree")
}

// git runs git in dir and returns its standard output without its last
// newlines.
func git(dir string, env []string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimRight(out.String(), "\n"), nil
}
