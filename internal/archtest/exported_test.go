package archtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/importer"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestNoInternalTypeInExportedAPI fails when an exported name of a core
// package (a function's signature, a variable's or constant's type, an
// exported field or method of an exported type) mentions a type from an
// internal/ package: a user could see it but not name it, and its
// changes would break users without a trace in the public API. It reads
// the packages' compiled export data (go list -export), so it checks the
// types the compiler sees, inferred ones included.
func TestNoInternalTypeInExportedAPI(t *testing.T) {
	exports, core := exportData(t)
	fset := token.NewFileSet()
	imp := importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		f, ok := exports[path]
		if !ok {
			return nil, fmt.Errorf("no export data for %s", path)
		}
		return os.Open(f)
	})
	checked := 0
	for _, path := range core {
		if isInternal(path) {
			continue
		}
		pkg, err := imp.Import(path)
		if err != nil {
			t.Fatalf("import %s: %v", path, err)
		}
		checked++
		for _, leak := range internalLeaks(pkg) {
			t.Errorf("%s: %s", path, leak)
		}
	}
	if checked < 10 {
		t.Fatalf("checked only %d core packages; go list output looks wrong", checked)
	}
}

// exportData returns the export data file of every package the core
// packages need, and the core package paths.
func exportData(t *testing.T) (map[string]string, []string) {
	t.Helper()
	cmd := exec.Command("go", "list", "-export", "-deps", "-json=ImportPath,Export,Module", "github.com/levee-dev/levee/...")
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	exports := map[string]string{}
	var core []string
	dec := json.NewDecoder(&out)
	for dec.More() {
		var p struct {
			ImportPath, Export string
			Module             *struct{ Path string }
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		exports[p.ImportPath] = p.Export
		if p.Module != nil && p.Module.Path == "github.com/levee-dev/levee" && isCore(p.ImportPath) {
			core = append(core, p.ImportPath)
		}
	}
	return exports, core
}

func isInternal(path string) bool {
	return strings.Contains(path, "/internal/") || strings.HasSuffix(path, "/internal")
}

// internalLeaks lists every exported name of pkg whose API mentions a type
// of an internal package.
func internalLeaks(pkg *types.Package) []string {
	var leaks []string
	report := func(what string, typ types.Type) {
		if p := findInternal(typ, map[types.Type]bool{}); p != "" {
			leaks = append(leaks, fmt.Sprintf("%s mentions %s", what, p))
		}
	}
	scope := pkg.Scope()
	for _, name := range scope.Names() {
		obj := scope.Lookup(name)
		if !obj.Exported() {
			continue
		}
		tn, ok := obj.(*types.TypeName)
		if !ok {
			report(name, obj.Type())
			continue
		}
		if tn.IsAlias() {
			report("type "+name, obj.Type())
			continue
		}
		named, ok := obj.Type().(*types.Named)
		if !ok {
			continue
		}
		switch u := named.Underlying().(type) {
		case *types.Struct:
			for i := 0; i < u.NumFields(); i++ {
				if f := u.Field(i); f.Exported() {
					report(name+"."+f.Name(), f.Type())
				}
			}
		case *types.Interface:
			for i := 0; i < u.NumMethods(); i++ {
				if m := u.Method(i); m.Exported() {
					report(name+"."+m.Name(), m.Type())
				}
			}
		default:
			report("type "+name, u)
		}
		for i := 0; i < named.NumMethods(); i++ {
			if m := named.Method(i); m.Exported() {
				report(name+"."+m.Name(), m.Type())
			}
		}
	}
	return leaks
}

// findInternal returns the first internal type path in typ, or "". It
// stops at named types of public packages: those are checked where they
// are declared.
func findInternal(typ types.Type, seen map[types.Type]bool) string {
	if typ == nil || seen[typ] {
		return ""
	}
	seen[typ] = true
	switch t := typ.(type) {
	case *types.Named:
		if obj := t.Obj(); obj.Pkg() != nil && isInternal(obj.Pkg().Path()) {
			return obj.Pkg().Path() + "." + obj.Name()
		}
		if args := t.TypeArgs(); args != nil {
			for i := 0; i < args.Len(); i++ {
				if p := findInternal(args.At(i), seen); p != "" {
					return p
				}
			}
		}
	case *types.Alias:
		return findInternal(types.Unalias(t), seen)
	case *types.Pointer:
		return findInternal(t.Elem(), seen)
	case *types.Slice:
		return findInternal(t.Elem(), seen)
	case *types.Array:
		return findInternal(t.Elem(), seen)
	case *types.Chan:
		return findInternal(t.Elem(), seen)
	case *types.Map:
		if p := findInternal(t.Key(), seen); p != "" {
			return p
		}
		return findInternal(t.Elem(), seen)
	case *types.Signature:
		for _, tuple := range []*types.Tuple{t.Params(), t.Results()} {
			for i := 0; i < tuple.Len(); i++ {
				if p := findInternal(tuple.At(i).Type(), seen); p != "" {
					return p
				}
			}
		}
	case *types.Struct:
		for i := 0; i < t.NumFields(); i++ {
			if f := t.Field(i); f.Exported() {
				if p := findInternal(f.Type(), seen); p != "" {
					return p
				}
			}
		}
	case *types.Interface:
		for i := 0; i < t.NumMethods(); i++ {
			if p := findInternal(t.Method(i).Type(), seen); p != "" {
				return p
			}
		}
	}
	return ""
}

// TestInternalLeaksIsNotVacuous checks the checker on a package made to
// leak: an exported function returning an internal type is reported.
func TestInternalLeaksIsNotVacuous(t *testing.T) {
	internalPkg := types.NewPackage("github.com/levee-dev/levee/internal/x", "x")
	hidden := types.NewNamed(types.NewTypeName(token.NoPos, internalPkg, "Raw", nil), types.NewStruct(nil, nil), nil)
	pub := types.NewPackage("github.com/levee-dev/levee/pub", "pub")
	sig := types.NewSignatureType(nil, nil, nil, nil, types.NewTuple(types.NewVar(token.NoPos, pub, "", types.NewPointer(hidden))), false)
	pub.Scope().Insert(types.NewFunc(token.NoPos, pub, "Leak", sig))
	pub.Scope().Insert(types.NewFunc(token.NoPos, pub, "fine", sig))
	got := internalLeaks(pub)
	if len(got) != 1 || !strings.Contains(got[0], "Leak mentions github.com/levee-dev/levee/internal/x.Raw") {
		t.Fatalf("got %v, want one leak for Leak", got)
	}
}
