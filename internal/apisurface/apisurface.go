// Package apisurface counts the exported identifiers of a Go package, so
// the size of each public API can be reported and watched over time. Run
// it with
//
//	go run ./internal/apisurface/cmd/apisurface ./levee-dir ./dlq ...
//
// (see that command's doc). It reads source only and builds nothing.
package apisurface

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Count is the exported surface of one package, by kind. A name counts once
// where a user can reach it: a top-level exported func, type, const or var;
// an exported method of an exported type; an exported field of an exported
// struct type; an exported method of an exported interface type.
type Count struct {
	Funcs, Types, Consts, Vars int // top-level
	Methods, Fields            int // reachable through an exported type
}

// Total is the sum of every kind.
func (c Count) Total() int {
	return c.Funcs + c.Types + c.Consts + c.Vars + c.Methods + c.Fields
}

// Dir counts the exported identifiers of the package in dir: its non-test
// .go files, whatever their build tags (a tagged file is still API for the
// users who build with the tag). It returns an error if dir holds no
// package or a file does not parse.
func Dir(dir string) (Count, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return Count{}, fmt.Errorf("levee/apisurface: %w", err)
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, n), nil, parser.SkipObjectResolution)
		if err != nil {
			return Count{}, fmt.Errorf("levee/apisurface: %w", err)
		}
		if f.Name.Name == "main" {
			continue
		}
		files = append(files, f)
	}
	if len(files) == 0 {
		return Count{}, fmt.Errorf("levee/apisurface: no package in %s", dir)
	}
	return count(files), nil
}

func count(files []*ast.File) Count {
	var c Count
	exportedTypes := map[string]bool{}
	for _, f := range files {
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.TYPE {
				continue
			}
			for _, s := range g.Specs {
				if ts := s.(*ast.TypeSpec); ts.Name.IsExported() {
					exportedTypes[ts.Name.Name] = true
				}
			}
		}
	}
	for _, f := range files {
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if !d.Name.IsExported() {
					continue
				}
				if d.Recv == nil {
					c.Funcs++
				} else if exportedTypes[recvName(d.Recv.List[0].Type)] {
					c.Methods++
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						if !s.Name.IsExported() {
							continue
						}
						c.Types++
						switch t := s.Type.(type) {
						case *ast.StructType:
							c.Fields += exportedNames(t.Fields)
						case *ast.InterfaceType:
							c.Methods += exportedNames(t.Methods)
						}
					case *ast.ValueSpec:
						for _, n := range s.Names {
							if !n.IsExported() {
								continue
							}
							if d.Tok == token.CONST {
								c.Consts++
							} else {
								c.Vars++
							}
						}
					}
				}
			}
		}
	}
	return c
}

// exportedNames counts the exported named entries of a field list
// (embedded entries are not names of their own).
func exportedNames(fl *ast.FieldList) int {
	n := 0
	for _, f := range fl.List {
		for _, name := range f.Names {
			if name.IsExported() {
				n++
			}
		}
	}
	return n
}

func recvName(e ast.Expr) string {
	for {
		switch t := e.(type) {
		case *ast.StarExpr:
			e = t.X
		case *ast.IndexExpr:
			e = t.X
		case *ast.IndexListExpr:
			e = t.X
		case *ast.Ident:
			return t.Name
		default:
			return ""
		}
	}
}

// Table formats counts (package name to Count) as a Markdown table sorted
// by package name.
func Table(counts map[string]Count) string {
	names := make([]string, 0, len(counts))
	for n := range counts {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("| package | total | funcs | types | consts | vars | methods | fields |\n|---|---|---|---|---|---|---|---|\n")
	for _, n := range names {
		c := counts[n]
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %d | %d |\n", n, c.Total(), c.Funcs, c.Types, c.Consts, c.Vars, c.Methods, c.Fields)
	}
	return b.String()
}
