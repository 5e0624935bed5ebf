package dlq_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/middleware"
)

// The handlers below stand for a service's code: this external test
// package is not Levee's own as far as the stack's frames go.

func panicsInOrders(msg *message.Message) ([]*message.Message, error) {
	panic(fmt.Sprintf("order %s has no lines", msg.UUID))
}

func panicsInPayments(msg *message.Message) ([]*message.Message, error) {
	panic(fmt.Sprintf("order %s has no lines", msg.UUID))
}

func recurseThenPanic(n int) {
	if n == 0 {
		panic("deep")
	}
	recurseThenPanic(n - 1)
}

func failsPermanently(*message.Message) ([]*message.Message, error) {
	return nil, dlq.Permanent(fmt.Errorf("bad order"))
}

// deadLetter runs h once under a Retrier and returns its dead letter.
func deadLetter(t *testing.T, h message.HandlerFunc, uuid string, md map[string]string) *message.Message {
	t.Helper()
	pub := newRecPublisher()
	r, err := dlq.New(pub, dlq.WithTopic(testDLQ))
	if err != nil {
		t.Fatal(err)
	}
	msg := message.NewMessage(uuid, []byte(`{}`))
	for k, v := range md {
		msg.Metadata.Set(k, v)
	}
	if _, err := r.Middleware(h)(msg); err != nil {
		t.Fatalf("handler chain: %v", err)
	}
	dead := pub.published(testDLQ)
	if len(dead) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dead))
	}
	return dead[0]
}

// TestPanicLetterExplainsItself: a panic's dead letter carries the stack
// and the first frame of the project's code, whether the dlq recovered it
// or middleware.Recover did further in.
func TestPanicLetterExplainsItself(t *testing.T) {
	for name, h := range map[string]message.HandlerFunc{
		"recovered by the dlq": panicsInOrders,
		"recovered by Recover": middleware.Recover(panicsInOrders),
	} {
		t.Run(name, func(t *testing.T) {
			dl := deadLetter(t, h, "o-1", nil)
			md := dl.Metadata
			if md[dlq.KeyErrorClass] != string(dlq.ClassPanic) {
				t.Fatalf("class %q, want panic", md[dlq.KeyErrorClass])
			}
			stack := md[dlq.KeyStack]
			if !strings.Contains(stack, "dlq_test.panicsInOrders") || !strings.HasPrefix(stack, "goroutine ") {
				t.Errorf("levee_stack does not show the panicking function:\n%s", stack)
			}
			loc := md[dlq.KeyCodeLocation]
			if !strings.HasPrefix(loc, "github.com/levee-dev/levee/dlq_test.panicsInOrders (") || !strings.Contains(loc, "panicstack_test.go:") {
				t.Errorf("levee_code_location = %q, want panicsInOrders in panicstack_test.go", loc)
			}
			p := dlq.ParseDeadLetter(dl)
			if p.Stack != stack || p.CodeLocation != loc {
				t.Errorf("ParseDeadLetter: stack %d bytes, location %q; want the metadata's", len(p.Stack), p.CodeLocation)
			}
		})
	}
}

// TestPanicGroupingUsesTheFrame: the same panic from two functions is two
// groups; one function panicking with other ids is one group.
func TestPanicGroupingUsesTheFrame(t *testing.T) {
	a1 := deadLetter(t, panicsInOrders, "11111111", nil).Metadata[dlq.KeyFingerprint]
	a2 := deadLetter(t, panicsInOrders, "22222222", nil).Metadata[dlq.KeyFingerprint]
	b := deadLetter(t, panicsInPayments, "11111111", nil).Metadata[dlq.KeyFingerprint]
	if a1 != a2 {
		t.Errorf("one site, other ids: fingerprints %s and %s, want one group", a1, a2)
	}
	if a1 == b {
		t.Errorf("two sites, same panic: one fingerprint %s, want two groups", a1)
	}
}

// TestPanicStackIsBounded: a deep stack is cut to MaxStackLength bytes of
// valid UTF-8 marked with "…"; the grouping frame comes from the whole
// stack.
func TestPanicStackIsBounded(t *testing.T) {
	dl := deadLetter(t, func(*message.Message) ([]*message.Message, error) {
		recurseThenPanic(400)
		return nil, nil
	}, "deep-1", nil)
	stack := dl.Metadata[dlq.KeyStack]
	if len(stack) > dlq.MaxStackLength || !strings.HasSuffix(stack, "…") || !utf8.ValidString(stack) {
		t.Errorf("levee_stack: %d bytes (max %d), cut marked: %v, valid UTF-8: %v",
			len(stack), dlq.MaxStackLength, strings.HasSuffix(stack, "…"), utf8.ValidString(stack))
	}
	if loc := dl.Metadata[dlq.KeyCodeLocation]; !strings.HasPrefix(loc, "github.com/levee-dev/levee/dlq_test.recurseThenPanic (") {
		t.Errorf("levee_code_location = %q, want recurseThenPanic", loc)
	}
}

// TestStackKeysAreLevees: a producer's levee_stack and levee_code_location
// never reach a dead letter; Levee writes its own or none.
func TestStackKeysAreLevees(t *testing.T) {
	forged := map[string]string{dlq.KeyStack: "forged", dlq.KeyCodeLocation: "forged"}
	// A permanent error from behind a Levee layer: no stack, no location.
	md := deadLetter(t, middleware.Recover(failsPermanently), "f-1", forged).Metadata
	for _, k := range []string{dlq.KeyStack, dlq.KeyCodeLocation} {
		if v, ok := md[k]; ok {
			t.Errorf("%s = %q on a letter that has none", k, v)
		}
	}
	// A panic: Levee's own values.
	md = deadLetter(t, panicsInOrders, "f-2", forged).Metadata
	if md[dlq.KeyStack] == "forged" || md[dlq.KeyCodeLocation] == "forged" {
		t.Errorf("producer's stack keys kept: %q, %q", md[dlq.KeyStack], md[dlq.KeyCodeLocation])
	}
	if md[dlq.KeyFingerprint] != deadLetter(t, panicsInOrders, "f-3", nil).Metadata[dlq.KeyFingerprint] {
		t.Errorf("a producer's stack keys changed the group")
	}
}

// TestHandlerLocationWithoutPanic: wrapping the user's handler directly,
// every letter names where the handler is defined; no stack.
func TestHandlerLocationWithoutPanic(t *testing.T) {
	md := deadLetter(t, failsPermanently, "p-1", nil).Metadata
	if loc := md[dlq.KeyCodeLocation]; !strings.HasPrefix(loc, "github.com/levee-dev/levee/dlq_test.failsPermanently (") || !strings.Contains(loc, "panicstack_test.go:") {
		t.Errorf("levee_code_location = %q, want failsPermanently in panicstack_test.go", loc)
	}
	if _, ok := md[dlq.KeyStack]; ok {
		t.Errorf("levee_stack on a letter that did not panic")
	}
}

// README and docs/DLQ.md state the stack's bound.
func TestStackBoundDocumented(t *testing.T) {
	want := fmt.Sprintf("%d KiB", dlq.MaxStackLength>>10)
	for _, f := range []string{"../README.md", "../docs/DLQ.md"} {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(raw), "\n") {
			if strings.Contains(line, "levee_stack") && strings.Contains(line, "KiB") && !strings.Contains(line, want) {
				t.Errorf("%s: %q does not say %s", f, line, want)
			}
		}
		if !strings.Contains(string(raw), want) {
			t.Errorf("%s does not state the stack's bound, %s", f, want)
		}
	}
}
