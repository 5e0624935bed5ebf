//go:build unix

package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/dlq/dlqops"
)

// syncBuffer is a bytes.Buffer safe for the command's goroutine and the
// test's.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSIGTERMStopsLikeCtrlC: `levee dlq serve` (and replay) given SIGTERM,
// as a job runner, systemd or Kubernetes stops a process, stops as on
// Ctrl-C: the console shuts down and the command exits 0. Before, only
// os.Interrupt was caught and SIGTERM killed the process as a crash (this
// test process with it), so a replay did not mark the letter it was
// publishing.
func TestSIGTERMStopsLikeCtrlC(t *testing.T) {
	var out, errb syncBuffer
	c := &dlqCmd{stdout: &out, stderr: &errb, now: time.Now,
		openStore: func(context.Context, dlqops.StoreConfig) (dlqops.Store, func() error, error) {
			return dlqops.NewMemStore(), func() error { return nil }, nil
		},
		openPublisher: func(context.Context, *config.Config) (message.Publisher, func() error, error) {
			return &dlqTestPublisher{}, func() error { return nil }, nil
		},
	}
	c.configPath = dlqWriteConfig(t, dlqTestConfig)
	done := make(chan int, 1)
	go func() {
		done <- c.runUntilStopped([]string{"serve", "--insecure-loopback", "--listen", "127.0.0.1:0"})
	}()
	deadline := time.After(30 * time.Second)
	for !strings.Contains(errb.String(), "levee dlq serve: http://") {
		select {
		case code := <-done:
			t.Fatalf("serve ended with %d before it served: %s", code, errb.String())
		case <-deadline:
			t.Fatalf("serve did not start: %s", errb.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("serve stopped by SIGTERM: exit %d, want 0; stderr %s", code, errb.String())
		}
	case <-deadline:
		t.Fatalf("serve did not stop on SIGTERM: %s", errb.String())
	}
}
