package adapters_test

import (
	"context"
	"errors"
	"maps"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/levee-dev/levee/adapters"
)

// fakeSub hands over messages from its own channel, one subscription per
// Subscribe call; like a broker consumer it waits for Ack or Nack before
// handing over the next, and records the Nacks.
type fakeSub struct {
	src    chan *message.Message
	mu     sync.Mutex
	nacked []string // guarded by mu
	closed int      // guarded by mu
	err    error
}

func (f *fakeSub) Subscribe(ctx context.Context, _ string) (<-chan *message.Message, error) {
	if f.err != nil {
		return nil, f.err
	}
	out := make(chan *message.Message)
	go func() {
		defer close(out)
		for {
			select {
			case msg := <-f.src:
				select {
				case out <- msg:
				case <-ctx.Done():
					f.src <- msg
					return
				}
				select {
				case <-msg.Acked():
				case <-msg.Nacked():
					f.mu.Lock()
					f.nacked = append(f.nacked, msg.UUID)
					f.mu.Unlock()
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

func (f *fakeSub) Close() error {
	f.mu.Lock()
	f.closed++
	f.mu.Unlock()
	return nil
}

func TestFanInInFlight(t *testing.T) {
	cases := []struct {
		name  string
		build func(src chan *message.Message) (*adapters.FanIn, *fakeSub, error)
		want  int
	}{
		{"three subscriptions of one subscriber", func(src chan *message.Message) (*adapters.FanIn, *fakeSub, error) {
			s := &fakeSub{src: src}
			f, err := adapters.NewFanIn(s, s, s)
			return f, s, err
		}, 3},
		{"limiter of five", func(src chan *message.Message) (*adapters.FanIn, *fakeSub, error) {
			s := &fakeSub{src: src}
			f, err := adapters.NewLimiter(s, 5)
			return f, s, err
		}, 1}, // the fake itself hands over one at a time
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				src := make(chan *message.Message, 20)
				for i := range 20 {
					src <- message.NewMessage(string(rune('a'+i)), nil)
				}
				f, sub, err := tc.build(src)
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				ch, err := f.Subscribe(ctx, "t")
				if err != nil {
					t.Fatal(err)
				}
				var held []*message.Message
				for {
					synctest.Wait()
					select {
					case m := <-ch:
						held = append(held, m)
						continue
					default:
					}
					break
				}
				if len(held) != tc.want {
					t.Fatalf("got %d in flight, want %d", len(held), tc.want)
				}
				for _, m := range held {
					m.Ack()
				}
				cancel()
				for range ch {
				}
				if err := f.Close(); err != nil {
					t.Fatal(err)
				}
				if err := f.Close(); err != nil {
					t.Fatal(err)
				}
				sub.mu.Lock()
				defer sub.mu.Unlock()
				if sub.closed != 1 {
					t.Fatalf("underlying closed %d times, want 1", sub.closed)
				}
			})
		})
	}
}

// unboundedSub hands over every message at once, one goroutine each, like
// GoChannel; it records how many it handed over.
type unboundedSub struct{ msgs []*message.Message }

func (u *unboundedSub) Subscribe(ctx context.Context, _ string) (<-chan *message.Message, error) {
	out := make(chan *message.Message)
	var wg sync.WaitGroup
	for _, m := range u.msgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case out <- m:
				case <-ctx.Done():
					return
				}
				select {
				case <-m.Acked():
					return
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); close(out) }()
	return out, nil
}

func (u *unboundedSub) Close() error { return nil }

// TestLimiterCapsUnbounded checks the cap on a subscriber that otherwise
// hands over every message at once (GoChannel).
func TestLimiterCapsUnbounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := &unboundedSub{}
		for i := range 10 {
			u.msgs = append(u.msgs, message.NewMessage(string(rune('a'+i)), nil))
		}
		f, err := adapters.NewLimiter(u, 4)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		ch, err := f.Subscribe(ctx, "t")
		if err != nil {
			t.Fatal(err)
		}
		got, acked := 0, 0
		for acked < 10 {
			var held []*message.Message
			for {
				synctest.Wait()
				select {
				case m := <-ch:
					held = append(held, m)
					continue
				default:
				}
				break
			}
			if len(held) > 4 || len(held) == 0 {
				t.Fatalf("got %d in flight, want 1..4", len(held))
			}
			got = max(got, len(held))
			for _, m := range held {
				m.Ack()
				acked++
			}
		}
		if got != 4 {
			t.Fatalf("got max %d in flight, want 4", got)
		}
		cancel()
		for range ch {
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestFanInNacksUndelivered checks that a message taken from the transport
// but not handed over before the subscription ends is Nacked, not lost.
func TestFanInNacksUndelivered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := make(chan *message.Message, 1)
		only := message.NewMessage("only", nil)
		src <- only
		s := &fakeSub{src: src}
		f, err := adapters.NewFanIn(s)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		ch, err := f.Subscribe(ctx, "t")
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // the forwarder holds "only", nobody reads ch
		cancel()
		for range ch {
		}
		synctest.Wait()
		defer f.Close()
		if len(src) == 1 {
			return // the fake took it back before handing over: not lost
		}
		select {
		case <-only.Nacked():
		default:
			t.Fatal("message handed to FanIn but neither delivered nor nacked")
		}
	})
}

// graceSub is a subscriber whose Close, like a Redis member's, waits a
// grace for the message it holds to be settled.
type graceSub struct {
	fakeSub
	grace time.Duration
}

func (g *graceSub) Close() error { time.Sleep(g.grace); return g.fakeSub.Close() }

// TestFanInClosesSubscribersTogether: the distinct subscribers of a FanIn
// (Redis consumer-group members) are closed at the same time, so a Close
// waits one grace, not one per subscriber, and no subscriber's messages
// stay live while another's settle. Closed one after another, three took
// three graces.
func TestFanInClosesSubscribersTogether(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const grace = 5 * time.Second
		subs := make([]message.Subscriber, 3)
		for i := range subs {
			subs[i] = &graceSub{fakeSub: fakeSub{src: make(chan *message.Message)}, grace: grace}
		}
		f, err := adapters.NewFanIn(subs...)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took != grace {
			t.Errorf("Close of %d subscribers each waiting %v took %v, want %v", len(subs), grace, took, grace)
		}
		for i, s := range subs {
			if n := s.(*graceSub).closed; n != 1 {
				t.Errorf("subscriber %d closed %d times, want 1", i, n)
			}
		}
	})
}

func TestFanInErrors(t *testing.T) {
	if _, err := adapters.NewFanIn(); err == nil {
		t.Fatal("got nil error for no subscribers")
	}
	if _, err := adapters.NewLimiter(&fakeSub{}, 0); err == nil {
		t.Fatal("got nil error for limit 0")
	}
	boom := errors.New("boom")
	f, err := adapters.NewFanIn(&fakeSub{src: make(chan *message.Message)}, &fakeSub{err: boom})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Subscribe(context.Background(), "t"); !errors.Is(err, boom) {
		t.Fatalf("got %v, want boom", err)
	}
	_ = f.Close()
	if _, err := f.Subscribe(context.Background(), "t"); !errors.Is(err, adapters.ErrClosed) {
		t.Fatalf("got %v, want ErrClosed", err)
	}
}

type retryErr struct{ d time.Duration }

func (e retryErr) Error() string             { return "later" }
func (e retryErr) RetryAfter() time.Duration { return e.d }

func TestRetryAfterMiddleware(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"success", nil, ""},
		{"plain error", errors.New("x"), ""},
		{"retry after", retryErr{250 * time.Millisecond}, "250ms"},
		{"wrapped retry after", errors.Join(errors.New("ctx"), retryErr{2 * time.Second}), "2s"},
		{"zero delay", retryErr{0}, ""},
		{"capped", retryErr{48 * time.Hour}, "1h0m0s"},
		// a subscriber of the user's own may hand over nil metadata
		{"nil metadata", retryErr{time.Second}, "1s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := adapters.RetryAfterMiddleware(func(*message.Message) ([]*message.Message, error) { return nil, tc.err })
			msg := message.NewMessage("1", nil)
			if tc.name == "nil metadata" {
				msg.Metadata = nil
			} else if tc.err != nil {
				msg.Metadata.Set(adapters.MetadataRetryAfter, "1h") // stale: never kept on a Nack
			}
			_, err := h(msg)
			if !errors.Is(err, tc.err) {
				t.Fatalf("got %v, want %v", err, tc.err)
			}
			if got := msg.Metadata.Get(adapters.MetadataRetryAfter); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestFanInStripsControlKeys: the FanIn is the trust boundary of the
// transports it serves: a producer's control keys never reach the handler.
func TestFanInStripsControlKeys(t *testing.T) {
	gc := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
	f, err := adapters.NewLimiter(gc, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ch, err := f.Subscribe(context.Background(), "t")
	if err != nil {
		t.Fatal(err)
	}
	msg := message.NewMessage("u", nil)
	msg.Metadata.Set(adapters.MetadataDeliveryCount, "99")
	msg.Metadata.Set(adapters.MetadataRetryAfter, "1h")
	msg.Metadata.Set(adapters.MetadataRedeliverAt, "99999999999999")
	msg.Metadata.Set("app", "kept")
	if err := gc.Publish("t", msg); err != nil {
		t.Fatal(err)
	}
	got := <-ch
	got.Ack()
	want := message.Metadata{"app": "kept"}
	if !maps.Equal(got.Metadata, want) {
		t.Fatalf("handler saw %v, want %v", got.Metadata, want)
	}
}

// TestFanInNilMetadata: a message a subscriber hands over with nil
// metadata (watermill-redisstream decodes msgpack nil so) reaches the
// handler with an empty map, so the layers that write a key into it
// (outside the stack's recover) do not panic.
func TestFanInNilMetadata(t *testing.T) {
	src := &fakeSub{src: make(chan *message.Message, 1)}
	f, err := adapters.NewFanIn(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // before Close: the fake subscription ends with it
	ch, err := f.Subscribe(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	msg := message.NewMessage("u", nil)
	msg.Metadata = nil
	src.src <- msg
	got := <-ch
	got.Ack()
	if got.Metadata == nil {
		t.Fatal("handed over nil metadata")
	}
}

// TestTransportPublisherStripsControlKeys: a message forwarded as it was
// consumed leaves the process without Levee's control keys, and the
// caller's message and slice are left unchanged.
func TestTransportPublisherStripsControlKeys(t *testing.T) {
	tr, err := adapters.New(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	ch, err := tr.Subscriber.Subscribe(context.Background(), "t")
	if err != nil {
		t.Fatal(err)
	}
	fwd := message.NewMessage("fwd", []byte("p"))
	fwd.Metadata.Set(adapters.MetadataDeliveryCount, "3")
	fwd.Metadata.Set(adapters.MetadataRetryAfter, "5s")
	fwd.Metadata.Set("app", "kept")
	// A transport's reserved key (watermill-redisstream refuses to publish
	// it) does not leave either: a dead letter carrying it was refused.
	fwd.Metadata.Set("_watermill_message_uuid", "x")
	plain := message.NewMessage("plain", nil)
	msgs := []*message.Message{plain, fwd}
	if err := tr.Publisher.Publish("t", msgs...); err != nil {
		t.Fatal(err)
	}
	if msgs[1] != fwd || fwd.Metadata.Get(adapters.MetadataDeliveryCount) != "3" || fwd.Metadata.Get(adapters.MetadataRetryAfter) != "5s" {
		t.Fatalf("the caller's message or slice changed: %v", fwd.Metadata)
	}
	for range 2 {
		got := <-ch
		got.Ack()
		if got.UUID == "fwd" && (!maps.Equal(got.Metadata, message.Metadata{"app": "kept"}) || string(got.Payload) != "p") {
			t.Fatalf("published %v %q, want only app=kept and the payload", got.Metadata, got.Payload)
		}
	}
}
