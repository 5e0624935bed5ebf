package dlq

import (
	"path"
	"reflect"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
)

// MaxStackLength bounds KeyStack: the panic's stack is cut to its first
// 8 KiB, at a UTF-8 boundary, ending in "…". The frame that groups the
// letter is read from the whole stack before the cut.
const MaxStackLength = 8 << 10

// frame is one call of a goroutine stack: the function (package path and
// name, no arguments), its file and line.
type frame struct {
	fn, file string
	line     int
}

// location returns "fn (file:line)", or fn alone when the file is unknown.
func (f frame) location() string {
	if f.file == "" {
		return f.fn
	}
	return f.fn + " (" + f.file + ":" + strconv.Itoa(f.line) + ")"
}

// leveeModule is Levee's module path: its frames are not the project's
// code, except its examples and its external test packages (package path
// ending in _test), which play a user in its tests. (Where Levee's source
// tree is known, its files decide instead: isProjectFrame.)
const leveeModule = "github.com/levee-dev/levee"

// origin tells the project's code from its dependencies' in a stack. A
// function's name alone does not: a closure of Levee's inlined into the
// caller is named after the caller ("shop.Handle.Recover.func1"), so its
// file decides too.
type origin struct {
	// mainMod is the running binary's main module (debug.ReadBuildInfo),
	// "" when unknown or when it is Levee itself (Levee's own tests).
	mainMod string
	// leveeDir is the folder of Levee's core module source as compiled in
	// (from this file's path), "" when unknown.
	leveeDir string
}

// newOrigin reads the build info and where this file was compiled from.
func newOrigin() origin {
	var o origin
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Path != leveeModule && bi.Main.Path != "command-line-arguments" {
		o.mainMod = bi.Main.Path
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		o.leveeDir = path.Dir(path.Dir(file)) // <root>/dlq/panicstack.go
	}
	return o
}

// inLevee reports whether file is in Levee's source tree.
func (o origin) inLevee(file string) bool {
	return o.leveeDir != "" && o.leveeDir != "." && strings.HasPrefix(file, o.leveeDir+"/")
}

// isProjectFrame reports whether a frame is the project's code. In Levee's
// source tree the file decides: its examples and its test files (which
// play a user in Levee's tests, whatever their package) are, the rest is
// not. Elsewhere the function's package decides (isProject), and
// Watermill's files are not.
func (o origin) isProjectFrame(f frame) bool {
	if o.inLevee(f.file) {
		rel := f.file[len(o.leveeDir)+1:]
		return strings.HasPrefix(rel, "examples/") || strings.HasSuffix(rel, "_test.go")
	}
	return isProject(f.fn, o.mainMod) && !strings.Contains(f.file, "/github.com/!three!dots!labs/watermill")
}

// pkgOf returns the package path of a full function name
// ("path/pkg.(*T).M"). The runtime escapes dots in the last path element
// ("yaml%2ev3"), so the first dot after the last slash ends the path.
func pkgOf(fn string) string {
	slash := max(strings.LastIndexByte(fn, '/'), 0)
	if dot := strings.IndexByte(fn[slash:], '.'); dot >= 0 {
		return fn[:slash+dot]
	}
	return fn
}

// isProject reports whether fn (a full function name) belongs to the
// service's code: package main or, when mainMod is known, the main
// module's packages; otherwise any package outside the standard library
// (a first path element without a dot), Levee and Watermill.
func isProject(fn, mainMod string) bool {
	pkg := pkgOf(fn)
	first, _, _ := strings.Cut(pkg, "/")
	switch {
	case pkg == "main":
		return true
	case !strings.Contains(first, "."):
		return false
	case pkg == leveeModule || strings.HasPrefix(pkg, leveeModule+"/"):
		return strings.HasPrefix(pkg, leveeModule+"/examples/") || strings.HasSuffix(pkg, "_test")
	case strings.HasPrefix(pkg, "github.com/ThreeDotsLabs/watermill"):
		return false
	case mainMod != "":
		return pkg == mainMod || strings.HasPrefix(pkg, mainMod+"/")
	}
	return true
}

// projectFrame returns the first frame of the project's code in stack, a
// goroutine stack as runtime/debug.Stack formats it (o decides what is
// the project's), below the panic call: the frames above "panic(" are the
// recovery's own. It returns false when no frame is the project's (the
// panic came from Levee, Watermill or the standard library with no
// project code between) or stack is garbage. It never panics, and
// allocates nothing but the frame's strings (substrings of stack).
func projectFrame(stack string, o origin) (frame, bool) {
	if i := strings.Index(stack, "\npanic("); i >= 0 {
		stack = stack[i+1:]
		_, stack, _ = strings.Cut(stack, "\n") // the panic( line
	} else if strings.HasPrefix(stack, "panic(") {
		_, stack, _ = strings.Cut(stack, "\n")
	}
	for stack != "" {
		var l string
		l, stack, _ = strings.Cut(stack, "\n")
		if l == "" || l[0] == '\t' || strings.HasPrefix(l, "goroutine ") {
			continue
		}
		if strings.HasPrefix(l, "created by ") {
			break
		}
		f := frame{fn: funcName(l)}
		if f.fn == "" {
			continue
		}
		if next, _, _ := strings.Cut(stack, "\n"); next != "" && next[0] == '\t' {
			f.file, f.line = fileLine(strings.TrimSpace(next))
		}
		if o.isProjectFrame(f) {
			return f, true
		}
	}
	return frame{}, false
}

// funcName strips the argument list from a stack line
// "pkg.(*T).M(0x1, {0x2, 0x3})" or "pkg.F(...)".
func funcName(l string) string {
	if !strings.HasSuffix(l, ")") {
		return ""
	}
	depth := 0
	for i := len(l) - 1; i >= 0; i-- {
		switch l[i] {
		case ')':
			depth++
		case '(':
			depth--
			if depth == 0 {
				return l[:i]
			}
		}
	}
	return ""
}

// fileLine reads "/path/file.go:42 +0x1d" into the file and the line.
func fileLine(s string) (string, int) {
	s, _, _ = strings.Cut(s, " ")
	colon := strings.LastIndexByte(s, ':')
	if colon < 0 {
		return s, 0
	}
	n, err := strconv.Atoi(s[colon+1:])
	if err != nil {
		return s, 0
	}
	return s[:colon], n
}

// funcLocation returns the location of h when it is the project's code
// (not a Levee layer or a Watermill one), for KeyCodeLocation, or "".
func funcLocation(h message.HandlerFunc, o origin) string {
	if h == nil {
		return ""
	}
	fn := runtime.FuncForPC(reflect.ValueOf(h).Pointer())
	if fn == nil {
		return ""
	}
	f := frame{fn: fn.Name()}
	f.file, f.line = fn.FileLine(fn.Entry())
	if !o.isProjectFrame(f) {
		return ""
	}
	return f.location()
}

// panicDetails returns the stack of the first *levee.PanicError in err's
// chain and the first frame of the project's code in it. It walks the
// chain itself (Unwrap() error and Unwrap() []error), as
// levee.AsDeferral does: errors.As would allocate its target on every
// dead letter.
func panicDetails(err error, o origin) (stack string, f frame, ok bool) {
	pe := asPanic(err)
	if pe == nil || len(pe.Stack) == 0 {
		return "", frame{}, false
	}
	stack = string(pe.Stack)
	f, ok = projectFrame(stack, o)
	return stack, f, ok
}

func asPanic(err error) *levee.PanicError {
	for err != nil {
		if pe, ok := err.(*levee.PanicError); ok {
			return pe
		}
		switch x := err.(type) {
		case interface{ Unwrap() error }:
			err = x.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range x.Unwrap() {
				if pe := asPanic(e); pe != nil {
					return pe
				}
			}
			return nil
		default:
			return nil
		}
	}
	return nil
}
