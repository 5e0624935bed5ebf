// Package sizes finds the long files and long functions of a source tree,
// the two limits of STYLE.md rule 15: a non-test file past MaxFileLines
// lines is split by concept, and a function past MaxFuncLines lines says in
// a comment why it is not split. Run it with
//
//	go run ./internal/sizes/cmd/sizes [root]
//
// (see that command's doc). It reads source only and builds nothing.
package sizes

import (
	"cmp"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// The limits of STYLE.md rule 15.
const (
	// MaxFileLines is the most lines a non-test .go file has without a
	// reason in a comment.
	MaxFileLines = 400
	// MaxFuncLines is the most lines a function or method has, from its
	// func keyword to its closing brace, without a reason in a comment.
	MaxFuncLines = 80
)

// Markers are the phrases, matched without regard to case, one of which a
// comment holds to say why a file or function is not split ("Not split:
// ...", "It is past 80 lines because ..."). For a function the comment is
// its doc comment or in its body; for a file it is above the first
// declaration (the file's header or package comment).
var Markers = []string{"not split", "past 80 lines", "past 400 lines"}

// Finding is one file or function over its limit.
type Finding struct {
	File  string // slash-separated, relative to the scanned root
	Func  string // "" for a file; Name or (Recv).Name for a function
	Line  int    // where the function starts (1 for a file)
	Lines int
	// Reason is the comment holding a marker, trimmed; "" if there is none.
	Reason string
}

func (f Finding) String() string {
	what := f.File
	if f.Func != "" {
		what = fmt.Sprintf("%s:%d %s", f.File, f.Line, f.Func)
	}
	if f.Reason != "" {
		return fmt.Sprintf("%s: %d lines (%s)", what, f.Lines, f.Reason)
	}
	return fmt.Sprintf("%s: %d lines", what, f.Lines)
}

// Scan walks root and returns the non-test .go files over MaxFileLines and
// the functions (in non-test files) over MaxFuncLines, ordered by size,
// largest first. It skips directories named testdata or vendor and hidden
// ones. It returns an error if a file does not parse.
func Scan(root string) (files, funcs []Finding, err error) {
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		fi, fu, err := scanFile(path, filepath.ToSlash(rel))
		if err != nil {
			return err
		}
		files = append(files, fi...)
		funcs = append(funcs, fu...)
		return nil
	})
	bySize := func(a, b Finding) int {
		return cmp.Or(cmp.Compare(b.Lines, a.Lines), cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line))
	}
	slices.SortFunc(files, bySize)
	slices.SortFunc(funcs, bySize)
	return files, funcs, err
}

func scanFile(path, rel string) (files, funcs []Finding, err error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, src, parser.ParseComments)
	if err != nil {
		return nil, nil, err
	}
	if n := fset.File(f.Pos()).LineCount(); n > MaxFileLines {
		// A file's reason is in a comment above its first declaration, so a
		// function's reason does not count for its file.
		to := f.FileEnd
		if len(f.Decls) > 0 {
			to = f.Decls[0].Pos()
			if g, ok := f.Decls[0].(*ast.GenDecl); ok && g.Doc != nil {
				to = g.Doc.Pos()
			} else if fd, ok := f.Decls[0].(*ast.FuncDecl); ok && fd.Doc != nil {
				to = fd.Doc.Pos()
			}
		}
		files = append(files, Finding{File: rel, Line: 1, Lines: n, Reason: reason(f.Comments, f.FileStart, to)})
	}
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok || fd.Body == nil {
			continue
		}
		start, end := fset.Position(fd.Type.Func).Line, fset.Position(fd.End()).Line
		if n := end - start + 1; n > MaxFuncLines {
			from := fd.Pos()
			if fd.Doc != nil {
				from = fd.Doc.Pos()
			}
			funcs = append(funcs, Finding{File: rel, Func: funcName(fd), Line: start, Lines: n,
				Reason: reason(f.Comments, from, fd.End())})
		}
	}
	return files, funcs, nil
}

// reason returns the text of the first comment line between from and to
// that holds one of Markers.
func reason(groups []*ast.CommentGroup, from, to token.Pos) string {
	for _, g := range groups {
		if g.Pos() < from || g.End() > to {
			continue
		}
		for _, c := range g.List {
			text := strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(c.Text, "//"), "/*"))
			for _, m := range Markers {
				if strings.Contains(strings.ToLower(text), m) {
					return text
				}
			}
		}
	}
	return ""
}

func funcName(fd *ast.FuncDecl) string {
	if fd.Recv == nil || len(fd.Recv.List) == 0 {
		return fd.Name.Name
	}
	t := fd.Recv.List[0].Type
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	switch x := t.(type) {
	case *ast.IndexExpr:
		t = x.X
	case *ast.IndexListExpr:
		t = x.X
	}
	if id, ok := t.(*ast.Ident); ok {
		return "(" + id.Name + ")." + fd.Name.Name
	}
	return fd.Name.Name
}
