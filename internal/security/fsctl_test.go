package security_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/internal/cli"
)

// fsctl runs fsctl as the client role against f: its user and password
// given as flags (NATS_USER and NATS_PASSWORD would do the same).
func fsctl(ctx context.Context, f *fleet, args ...string) (stdout, stderr string, code int) {
	var out, errb bytes.Buffer
	flags := []string{"--server", f.url, "--user", roleClient, "--password", passwords[roleClient]}
	if f.certs != nil {
		flags = append(flags, "--tls-ca", f.certs.CAFile)
	}
	if f.mode == mutual {
		flags = append(flags, "--tls-cert", f.certs.ClientCert, "--tls-key", f.certs.ClientKey)
	}
	if args[0] == "__complete" {
		// The word completed is the last: the flags go first.
		args = append(append([]string{args[0]}, flags...), args[1:]...)
	} else {
		args = append(args, flags...)
	}
	code = cli.Run(ctx, args, &out, &errb)
	return out.String(), errb.String(), code
}

// TestEveryFsctlVerbAsClient runs every verb of fsctl that talks to a
// fleet as the client role, the way an operator's user runs them: each
// does its work, nothing is refused (an uncached run and a backfill with
// progress included, which used to need JetStream's API).
func TestEveryFsctlVerbAsClient(t *testing.T) {
	f := sharedFleet(t)
	ctx, part := testCtx(t), uniq(t)
	ok := func(want string, args ...string) string {
		t.Helper()
		out, errs, code := fsctl(ctx, f, args...)
		if code != cli.ExitOK || !strings.Contains(out, want) {
			t.Fatalf("fsctl %s: exit %d, stdout %q, stderr %q; want exit 0 and %q", strings.Join(args, " "), code, out, errs, want)
		}
		return out
	}
	ok(`"hello `+part+`"`, "run", "sec", "small", "--partition", part)
	ok(`"cached": true`, "run", "sec", "small", "--partition", part, "--json")
	ok(`"hello `+part+`"`, "get", "sec", "small", "--partition", part)
	for _, asset := range []string{"big", "bigfile"} {
		ok("", "run", "sec", asset, "--partition", part, "--json")
		file := filepath.Join(t.TempDir(), asset)
		ok("", "get", "sec", asset, "--partition", part, "--out", file)
		if b, err := os.ReadFile(file); err != nil || len(b) != bigSize {
			t.Fatalf("get %s --out: %d bytes, %v; want %d", asset, len(b), err, bigSize)
		}
	}
	ok("", "exists", "sec", "small", "--partition", part)
	ok("completed", "status", "sec", "small", "--partition", part)
	ok("sum", "graph", "example")
	ok("daily", "assets", "sec")
	ok("daily", "info", "sec", "daily")
	ok("sec", "pipelines")
	ok("sec\n", "__complete", "run", "se")

	days := freshDays(4)
	out := ok(`"id"`, "backfill", "sec", "daily", "--partitions", days[0]+".."+days[3], "--progress", "--json")
	var bf struct{ ID string }
	if err := json.Unmarshal([]byte(out), &bf); err != nil || bf.ID == "" {
		t.Fatalf("backfill --json = %q (%v), want its id", out, err)
	}
	ok(`"succeeded": 4`, "backfill", "--follow", bf.ID, "--json")

	// An approval gate: listed, approved, and another rejected.
	ok("", "run", "sec", "gated", "--partition", part, "--async")
	ok("", "run", "sec", "gated", "--partition", part+"-no", "--async")
	waitFsctl(t, ctx, f, `"`+part+`-no"`, "approvals", "sec", "--json")
	waitFsctl(t, ctx, f, `"`+part+`"`, "approvals", "sec", "--json")
	ok("", "approve", "sec", "gated", "--partition", part)
	ok("", "reject", "sec", "gated", "--partition", part+"-no")
	waitFsctl(t, ctx, f, "completed", "status", "sec", "gated", "--partition", part)

	ok("", "run", "sec", "slow", "--partition", part, "--async")
	waitFsctl(t, ctx, f, "running", "status", "sec", "slow", "--partition", part)
	ok("", "cancel", "sec", "slow", "--partition", part)
	ok("", "invalidate", "sec", "small", "--partition", part)
	if _, _, code := fsctl(ctx, f, "exists", "sec", "small", "--partition", part); code != cli.ExitFailed {
		t.Fatalf("exists after invalidate: exit %d, want %d", code, cli.ExitFailed)
	}
}

// waitFsctl runs the fsctl command until its output says want.
func waitFsctl(t *testing.T, ctx context.Context, f *fleet, want string, args ...string) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for ctx.Err() == nil {
		if out, _, _ := fsctl(ctx, f, args...); strings.Contains(out, want) {
			return
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
	t.Fatalf("fsctl %s never said %q", strings.Join(args, " "), want)
}

// TestFsctlWatchAsClient follows a pipeline's events with fsctl watch as
// the client role, until interrupted.
func TestFsctlWatchAsClient(t *testing.T) {
	f := sharedFleet(t)
	ctx := testCtx(t)
	wctx, interrupt := context.WithCancel(ctx)
	out := &lineBuffer{}
	done := make(chan int, 1)
	go func() {
		var errb bytes.Buffer
		args := []string{"watch", "sec", "--server", f.url, "--user", roleClient, "--password", passwords[roleClient]}
		code := cli.Run(wctx, args, out, &errb)
		if code != cli.ExitOK {
			t.Errorf("watch: exit %d, stderr %q", code, errb.String())
		}
		done <- code
	}()
	// The watch subscribes as it starts: run until it shows a run.
	for attempt := 1; ; attempt++ {
		part := uniq(t)
		out.expect(attempt, "["+part+"]")
		if _, errs, code := fsctl(ctx, f, "run", "sec", "small", "--partition", part); code != cli.ExitOK {
			t.Fatalf("run: exit %d, %s", code, errs)
		}
		if out.wait(ctx, attempt) {
			break
		}
		if attempt == 5 {
			t.Fatalf("fsctl watch showed none of 5 runs:\n%s", out.String())
		}
	}
	interrupt()
	<-done
}

// lineBuffer is a watch's stdout, safe for concurrent use, that tells
// when a line with an expected text has arrived.
type lineBuffer struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	want   map[int]string
	seen   map[int]bool
	notify chan struct{}
}

func (b *lineBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.buf.Write(p)
	for i, w := range b.want {
		if strings.Contains(b.buf.String(), w) && !b.seen[i] {
			b.seen[i] = true
		}
	}
	if b.notify != nil {
		close(b.notify)
		b.notify = nil
	}
	return n, err
}

func (b *lineBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// expect registers attempt's expected text.
func (b *lineBuffer) expect(attempt int, text string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.want == nil {
		b.want, b.seen = map[int]string{}, map[int]bool{}
	}
	b.want[attempt] = text
}

// wait waits a few seconds at most for attempt's text, and reports
// whether it arrived.
func (b *lineBuffer) wait(ctx context.Context, attempt int) bool {
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for {
		b.mu.Lock()
		if b.seen[attempt] {
			b.mu.Unlock()
			return true
		}
		if b.notify == nil {
			b.notify = make(chan struct{})
		}
		ch := b.notify
		b.mu.Unlock()
		select {
		case <-ch:
		case <-wctx.Done():
			return false
		}
	}
}
