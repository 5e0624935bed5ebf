package dlq

import (
	"strings"
	"testing"
)

func TestIsProject(t *testing.T) {
	tests := []struct {
		fn, mainMod string
		want        bool
	}{
		{"main.(*payments).handle", "", true},
		{"main.main.func1", "example.com/shop", true},
		{"runtime.gopanic", "", false},
		{"runtime/debug.Stack", "", false},
		{"encoding/json.(*decodeState).object", "", false},
		{"strings.Repeat", "", false},
		{"github.com/levee-dev/levee/dlq.call.func1", "", false},
		{"github.com/levee-dev/levee/middleware.Recover.func1", "example.com/shop", false},
		{"github.com/levee-dev/levee.(*PanicError).Error", "", false},
		{"github.com/levee-dev/levee/examples/orders.(*payments).handle", "", true},
		{"github.com/levee-dev/levee/dlq_test.TestX.func1", "", true},
		{"github.com/ThreeDotsLabs/watermill/message.(*Router).Run", "", false},
		{"example.com/shop/orders.(*Svc).Handle", "example.com/shop", true},
		{"example.com/shop.Handle", "example.com/shop", true},
		{"example.com/shopping.Handle", "example.com/shop", false},
		{"gopkg.in/yaml%2ev3.(*decoder).unmarshal", "example.com/shop", false},
		{"gopkg.in/yaml%2ev3.(*decoder).unmarshal", "", true},
		{"", "", false},
	}
	for _, tt := range tests {
		if got := isProject(tt.fn, tt.mainMod); got != tt.want {
			t.Errorf("isProject(%q, %q) = %v, want %v", tt.fn, tt.mainMod, got, tt.want)
		}
	}
}

// A stack as runtime/debug.Stack prints it, recovered in the dlq.
const sampleStack = `goroutine 7 [running]:
runtime/debug.Stack()
	/usr/local/go/src/runtime/debug/stack.go:26 +0x5e
github.com/levee-dev/levee/dlq.call.func1()
	/src/levee/dlq/panic.go:18 +0x45
panic({0x5d0f60?, 0xc0000a2f30?})
	/usr/local/go/src/runtime/panic.go:785 +0x132
strings.Repeat({0x6a1b2c, 0x1}, 0xffffffffffffffff)
	/usr/local/go/src/strings/strings.go:626 +0x5a5
example.com/shop/orders.(*Svc).Handle(0xc0000b2000, {0xc0001, 0x2})
	/src/shop/orders/svc.go:42 +0x1d
github.com/levee-dev/levee/middleware.Recover.func1(0xc000146000)
	/src/levee/middleware/recover.go:23 +0x7a
created by github.com/ThreeDotsLabs/watermill/message.(*Router).Run in goroutine 1
	/go/pkg/mod/watermill/router.go:300 +0x2c5
`

func TestProjectFrame(t *testing.T) {
	tests := []struct {
		name, stack, mainMod string
		want                 frame
		ok                   bool
	}{
		{"first project frame below the panic", sampleStack, "example.com/shop",
			frame{fn: "example.com/shop/orders.(*Svc).Handle", file: "/src/shop/orders/svc.go", line: 42}, true},
		{"no project frame", strings.Replace(sampleStack, "example.com/shop/orders.(*Svc).Handle", "github.com/levee-dev/levee/batch.run", 1), "",
			frame{}, false},
		{"frames above the panic call are the recovery's", "goroutine 1 [running]:\nexample.com/shop.recoverer()\n\t/a.go:1 +0x1\npanic({0x1})\n\t/p.go:2\nexample.com/shop.crash(...)\n\t/b.go:7\n", "",
			frame{fn: "example.com/shop.crash", file: "/b.go", line: 7}, true},
		{"no panic line: from the top", "main.main()\n\t/m.go:3 +0x1\n", "", frame{fn: "main.main", file: "/m.go", line: 3}, true},
		{"garbage", "\x00\xff(((\n\t:\n)", "", frame{}, false},
		{"empty", "", "", frame{}, false},
		{"no file line: the function alone", "main.f()", "", frame{fn: "main.f"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := projectFrame(tt.stack, origin{mainMod: tt.mainMod, leveeDir: "/src/levee"})
			if ok != tt.ok || got != tt.want {
				t.Errorf("projectFrame = %+v, %v; want %+v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
	if got := (frame{fn: "main.f", file: "/m.go", line: 3}).location(); got != "main.f (/m.go:3)" {
		t.Errorf("location() = %q", got)
	}
}

func FuzzProjectFrame(f *testing.F) {
	f.Add(sampleStack)
	f.Add("panic(\n")
	f.Add("x\npanic(")
	f.Fuzz(func(t *testing.T, stack string) {
		projectFrame(stack, origin{})
		projectFrame(stack, origin{mainMod: "example.com/shop", leveeDir: "/src/levee"})
	})
}

func TestFingerprintAt(t *testing.T) {
	a := fingerprintAt("*levee.PanicError", "levee: panic: id 12", "main.a")
	if a != fingerprintAt("*levee.PanicError", "levee: panic: id 99", "main.a") {
		t.Errorf("same frame, values differing in a number: two groups")
	}
	if a == fingerprintAt("*levee.PanicError", "levee: panic: id 12", "main.b") {
		t.Errorf("two frames: one group")
	}
	if fingerprintAt("t", "m", "") != Fingerprint("t", "m") {
		t.Errorf("no frame: not Fingerprint")
	}
}

// A closure of Levee's inlined into the caller carries the caller's name;
// its file tells it apart.
func TestOwnFile(t *testing.T) {
	o := origin{leveeDir: "/src/levee"}
	tests := []struct {
		f    frame
		want bool
	}{
		{frame{fn: "example.com/shop.Handle.Recover.func1", file: "/src/levee/middleware/recover.go"}, false},
		{frame{fn: "example.com/shop.Handle", file: "/src/shop/h.go"}, true},
		{frame{fn: "github.com/levee-dev/levee/examples/orders.pay", file: "/src/levee/examples/orders/pay.go"}, true},
		{frame{fn: "github.com/levee-dev/levee/dlq_test.h", file: "/src/levee/dlq/x_test.go"}, true},
		{frame{fn: "example.com/shop.run.NewRouter.func2", file: "/go/pkg/mod/github.com/!three!dots!labs/watermill@v1.5.1/message/router.go"}, false},
	}
	for _, tt := range tests {
		if got := o.isProjectFrame(tt.f); got != tt.want {
			t.Errorf("isProjectFrame(%+v) = %v, want %v", tt.f, got, tt.want)
		}
	}
	if d := newOrigin().leveeDir; d == "" || d == "." {
		t.Errorf("newOrigin: no Levee folder")
	}
}
