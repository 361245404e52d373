package client_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/client"
	"github.com/flowstone-go/flowstone/internal/natstest"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/nats-io/nats.go"
)

// verbs calls every verb once, for tests that expect all of them to fail
// the same way.
func verbs(c *client.Client) map[string]func(context.Context) error {
	return map[string]func(context.Context) error{
		"run": func(ctx context.Context) error { _, err := c.Run(ctx, "example", "sum"); return err },
		"get": func(ctx context.Context) error { _, err := c.Get(ctx, "example", "sum"); return err },
		"exists": func(ctx context.Context) error {
			_, err := c.Exists(ctx, "example", "sum")
			return err
		},
		"status": func(ctx context.Context) error { _, err := c.Status(ctx, "example", "sum"); return err },
		"cancel": func(ctx context.Context) error { return c.Cancel(ctx, "example", "sum") },
		"invalidate": func(ctx context.Context) error {
			_, err := c.Invalidate(ctx, "example", "sum")
			return err
		},
		"backfill": func(ctx context.Context) error {
			_, err := c.Backfill(ctx, "daily_sales", "revenue", flowstone.Partitions("2025-01-01"))
			return err
		},
		"graph":  func(ctx context.Context) error { _, err := c.Graph(ctx, "example"); return err },
		"assets": func(ctx context.Context) error { _, err := c.Assets(ctx, "example"); return err },
		"info": func(ctx context.Context) error {
			_, err := c.AssetInfo(ctx, "example", "sum")
			return err
		},
		"pipelines": func(ctx context.Context) error { _, err := c.Pipelines(ctx); return err },
		"enqueue": func(ctx context.Context) error {
			_, err := c.Enqueue(ctx, flowstone.RunRequest{Pipeline: "example", Asset: "sum", Partition: "default", WithDeps: true})
			return err
		},
	}
}

func errorType(t *testing.T, err error) flowstone.ErrorType {
	t.Helper()
	var fe *flowstone.Error
	if !errors.As(err, &fe) {
		t.Fatalf("error %v (%T) is not a *flowstone.Error", err, err)
	}
	return fe.Type
}

func TestNoCoordinatorIsUnavailable(t *testing.T) {
	s := natstest.Server(t)
	c, err := client.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for verb, call := range verbs(c) {
		t.Run(verb, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			start := time.Now()
			err := call(ctx)
			if !errors.Is(err, flowstone.ErrUnavailable) {
				t.Fatalf("err = %v, want unavailable", err)
			}
			if !strings.Contains(err.Error(), "no coordinator is answering on") || !strings.Contains(err.Error(), "fsctl dev") {
				t.Errorf("message does not say what to do: %v", err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v; no responders should answer at once", d)
			}
		})
	}
}

func TestUnreachableServer(t *testing.T) {
	// A port nobody listens on: bind one, then close it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "nats://user:secret@" + l.Addr().String()
	l.Close()

	start := time.Now()
	_, err = client.Connect(url)
	if got := errorType(t, err); got != flowstone.TypeUnavailable {
		t.Fatalf("type = %s, want unavailable (%v)", got, err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Connect took %v to fail", d)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("error leaks the password: %v", err)
	}
	if !strings.Contains(err.Error(), "fsctl dev") {
		t.Errorf("message does not say what to do: %v", err)
	}
}

// answer serves subject with a real NATS subscription that replies with
// what reply returns for each request.
func answer(t *testing.T, nc *nats.Conn, subject string, reply func([]byte) []byte) {
	t.Helper()
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
		if b := reply(m.Data); b != nil {
			m.Respond(b)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

func TestMalformedReplies(t *testing.T) {
	c, peer := connected(t)
	ctx := context.Background()

	for _, tc := range []struct {
		name  string
		reply string
		code  string
	}{
		{"garbage", "\x00not json at all", protocol.CodeInternal},
		{"empty", "", protocol.CodeInternal},
		{"both sides", `{"v":1,"ok":{"graph":"x"},"error":{"code":"timeout","message":"m"}}`, protocol.CodeInternal},
		{"unknown field", `{"v":1,"ok":{"graph":"x","extra":1}}`, protocol.CodeInternal},
		{"newer version", `{"v":99,"ok":{"graph":"x"}}`, protocol.CodeUnsupportedVersion},
		{"invalid error code", `{"v":1,"error":{"code":"Not A Code!","message":"m"}}`, protocol.CodeInternal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			answer(t, peer, protocol.APISubject(protocol.VerbGraph), func([]byte) []byte {
				if tc.reply == "" {
					return []byte{} // an empty reply, not a missing one
				}
				return []byte(tc.reply)
			})
			_, err := c.Graph(ctx, "example")
			var fe *flowstone.Error
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v (%T), want a *flowstone.Error", err, err)
			}
			switch {
			case tc.code == protocol.CodeInternal && fe.Type != flowstone.TypeInternal:
				t.Errorf("type = %s, want internal (%v)", fe.Type, err)
			case tc.code != protocol.CodeInternal && fe.Details["code"] != tc.code:
				t.Errorf("details code = %v, want %s (%v)", fe.Details["code"], tc.code, err)
			}
			if !strings.Contains(fe.Message, "graph") {
				t.Errorf("message does not name the verb: %v", fe.Message)
			}
		})
	}
}

// A coordinator's own failure (here, the error a handler that panicked
// answers with) reaches the caller as internal: not as a storage error,
// which would send them looking at the stores.
func TestCoordinatorInternalErrorIsInternal(t *testing.T) {
	c, peer := connected(t)
	answer(t, peer, protocol.APISubject(protocol.VerbStatus), func([]byte) []byte {
		return protocol.EncodeError(protocol.Errorf(protocol.CodeInternal, "the coordinator failed on this request: runtime error: index out of range"))
	})
	_, err := c.Status(context.Background(), "example", "sum")
	if !errors.Is(err, flowstone.ErrInternal) || errors.Is(err, flowstone.ErrStorage) {
		t.Fatalf("err = %v, want internal", err)
	}
	if fe := flowstone.AsError(err); !strings.Contains(fe.Message, "failed on this request") {
		t.Errorf("message = %q", fe.Message)
	}
}

func TestRemoteErrorsKeepTheirType(t *testing.T) {
	c, peer := connected(t)
	answer(t, peer, protocol.APISubject(protocol.VerbInfo), func(data []byte) []byte {
		req, perr := protocol.DecodeRequest[protocol.InfoRequest](data)
		if perr != nil {
			return protocol.EncodeError(perr)
		}
		return protocol.EncodeError(&protocol.Error{Code: protocol.CodeAssetNotFound, Message: "Asset \"" + req.Asset + "\" not found in example",
			Details: map[string]any{"asset": req.Asset, "available": []string{"numbers", "doubled", "sum"}}})
	})
	_, err := c.AssetInfo(context.Background(), "example", "nope")
	if !errors.Is(err, flowstone.ErrAssetNotFound) {
		t.Fatalf("err = %v, want asset_not_found", err)
	}
	var fe *flowstone.Error
	errors.As(err, &fe)
	if fe.Details["asset"] != "nope" {
		t.Errorf("details = %v", fe.Details)
	}
}

func TestBadArgumentsFailBeforeSending(t *testing.T) {
	s := natstest.Server(t)
	c, err := client.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// No coordinator: anything sent would be "unavailable", so a
	// bad_request proves the client refused it first.
	ctx := context.Background()
	for name, call := range map[string]func() error{
		"bad asset name": func() error { _, err := c.Get(ctx, "example", "no such"); return err },
		"bad pipeline":   func() error { _, err := c.Assets(ctx, "flowstone.>"); return err },
		"empty partition": func() error {
			_, err := c.Status(ctx, "example", "sum", flowstone.Partition(""))
			return err
		},
		"priority": func() error { _, err := c.Run(ctx, "example", "sum", flowstone.Priority(7)); return err },
		"scheduled without async": func() error {
			_, err := c.Run(ctx, "example", "sum", flowstone.ScheduledAt(time.Now().Add(time.Hour)))
			return err
		},
		"no partitions": func() error { _, err := c.Backfill(ctx, "daily_sales", "revenue"); return err },
		"repeated": func() error {
			_, err := c.Backfill(ctx, "daily_sales", "revenue", flowstone.Partitions("a", "a"))
			return err
		},
		"backfill priority": func() error {
			_, err := c.Backfill(ctx, "d", "r", flowstone.Partitions("a"), flowstone.Priority(9))
			return err
		},
		"watch bad name": func() error { return c.Watch(ctx, "a.b", func(protocol.Event) {}) },
		"huge partition": func() error {
			_, err := c.Exists(ctx, "example", "sum", flowstone.Partition(strings.Repeat("x", 5000)))
			return err
		},
		"invalid utf8": func() error { _, err := c.Exists(ctx, "example", "sum", flowstone.Partition("\xff")); return err },
		"parallel zero": func() error {
			_, err := c.Backfill(ctx, "d", "r", flowstone.Partitions("a"), flowstone.Parallel(0))
			return err
		},
		"graph bad name":  func() error { _, err := c.Graph(ctx, ""); return err },
		"cancel bad name": func() error { return c.Cancel(ctx, "example", "a.b") },
	} {
		t.Run(name, func(t *testing.T) {
			if err := call(); !errors.Is(err, flowstone.ErrBadRequest) {
				t.Fatalf("err = %v, want bad_request", err)
			}
		})
	}
}

func TestNoReplyTimesOut(t *testing.T) {
	c, peer := connected(t, client.WithTimeout(200*time.Millisecond))
	answer(t, peer, protocol.APISubject(protocol.VerbAssets), func([]byte) []byte { return nil }) // never answers
	_, err := c.Assets(context.Background(), "example")
	if !errors.Is(err, flowstone.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want timeout matching context.DeadlineExceeded", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Assets(ctx, "example"); !errors.Is(err, flowstone.ErrCancelled) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want cancelled matching context.Canceled", err)
	}
}

func TestClosedClientIsUnavailable(t *testing.T) {
	s := natstest.Server(t)
	c, err := client.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, err := c.Pipelines(context.Background()); !errors.Is(err, flowstone.ErrUnavailable) {
		t.Fatalf("err = %v, want unavailable", err)
	}
}

func TestOptions(t *testing.T) {
	s := natstest.Server(t)
	nc := natstest.Connect(t, s)
	if _, err := client.New(nc, client.WithTimeout(0)); !errors.Is(err, flowstone.ErrConfig) {
		t.Errorf("WithTimeout(0): err = %v, want config_error", err)
	}
	if _, err := client.New(nc, client.WithStore("bad name", nil)); !errors.Is(err, flowstone.ErrConfig) {
		t.Errorf("WithStore: err = %v, want config_error", err)
	}
	if _, err := client.New(nil); !errors.Is(err, flowstone.ErrConfig) {
		t.Errorf("New(nil): err = %v, want config_error", err)
	}
	c, err := client.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	c.Close() // the connection stays the caller's
	if nc.IsClosed() {
		t.Error("Close closed a connection New was given")
	}
}

// connected starts a server and returns a client of it (with opts) and a
// peer connection that plays the coordinator; both close when the test
// ends.
func connected(t *testing.T, opts ...client.Option) (*client.Client, *nats.Conn) {
	t.Helper()
	s := natstest.Server(t)
	peer := natstest.Connect(t, s)
	c, err := client.Connect(s.ClientURL(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, peer
}
