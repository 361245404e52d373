package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/daemon"
	"github.com/flowstone-go/flowstone/internal/devfleet"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

// stopTimeout bounds how long dev and demo wait for their fleet to drain.
const stopTimeout = 10 * time.Second

// startFleet starts a dev fleet, its failure reported as a ConfigError.
// Its signal secret is FLOWSTONE_SIGNAL_SECRET, or 32 random bytes of its
// own: a dev fleet runs signal gates, and their tokens last as long as it.
func (e *env) startFleet(cfg devfleet.Config, logs bool) (*devfleet.Fleet, error) {
	cfg.SignalSecret = []byte(os.Getenv("FLOWSTONE_SIGNAL_SECRET"))
	if len(cfg.SignalSecret) == 0 {
		cfg.SignalSecret = make([]byte, 32)
		if _, err := rand.Read(cfg.SignalSecret); err != nil {
			return nil, &flowstone.Error{Type: flowstone.TypeConfigError, Message: "cannot make a signal secret: " + err.Error()}
		}
	}
	if logs {
		l := zerolog.New(e.stderr).With().Timestamp().Logger()
		cfg.Logger = &l
	}
	daemon.TuneGC() // a long-running fleet, like the daemons
	f, err := devfleet.Start(e.ctx, cfg)
	if err != nil {
		return nil, &flowstone.Error{Type: flowstone.TypeConfigError, Message: "cannot start the local fleet: " + err.Error()}
	}
	return f, nil
}

func stopFleet(f *devfleet.Fleet) {
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	f.Stop(ctx)
}

func devCmd(fs *flag.FlagSet) func(*env) error {
	port := fs.Int("port", devfleet.PortDefault, "NATS client `PORT` on 127.0.0.1 (-1: any free port)")
	dir := fs.String("dir", "", "data `DIR` (JetStream store and results), kept across restarts (default: a temp dir removed on exit)")
	workers := fs.Int("workers", 2, "`N` in-process workers hosting the bundled pipelines (0: only workers started elsewhere)")
	latency := fs.Duration("source-latency", 0, "`DURATION` of simulated latency added to every daily_sales.orders execution")
	logs := fs.Bool("log", false, "write the coordinator's and workers' logs to stderr (JSON)")
	return func(e *env) error {
		if *workers < 0 {
			return usageErr(e.cmd, "--workers must be 0 or more, got %d", *workers)
		}
		f, err := e.startFleet(devfleet.Config{Port: *port, Dir: *dir, Workers: *workers, SourceLatency: *latency}, *logs)
		if err != nil {
			return err
		}
		defer stopFleet(f)
		if e.g.json {
			e.writeJSONLine(map[string]any{"url": f.URL(), "dir": f.Dir(), "objects": f.ObjectsDir(), "workers": f.Workers()})
		} else {
			e.devBanner(f, *dir == "")
		}
		<-e.ctx.Done()
		if !e.g.json {
			fmt.Fprintln(e.stderr, "stopping the fleet")
		}
		return nil
	}
}

func (e *env) devBanner(f *devfleet.Fleet, temp bool) {
	server := ""
	if f.URL() != nats.DefaultURL {
		server = " --server " + f.URL()
	}
	kept := "kept across restarts"
	if temp {
		kept = "removed on exit; pass --dir to keep it"
	}
	if f.Workers() == 0 {
		fmt.Fprintf(e.stdout, `FlowStone dev fleet on %s: a coordinator and no workers
data in %s (%s)

Start workers from another terminal (in the repository), then run their pipelines:
  NATS_URL=%[1]s go run ./cmd/worker                                # the bundled pipelines
  NATS_URL=%[1]s go run ./examples/ownpipeline/cmd/shop-worker      # or your own, as in the README
  fsctl pipelines%[4]s
  fsctl run shop daily_report --partition 2025-01-15%[4]s

Interrupt (Ctrl-C) to stop.
`, f.URL(), f.Dir(), kept, server)
		return
	}
	fmt.Fprintf(e.stdout, `FlowStone dev fleet on %s: a coordinator and %d worker(s)
data in %s (%s)

Try, from another terminal:
  fsctl pipelines%[5]s
  fsctl run example sum%[5]s
  fsctl backfill daily_sales revenue --partitions 2025-01-01..2025-01-31 --parallel 4%[5]s
  fsctl watch daily_sales%[5]s
Add workers with: NATS_URL=%[1]s go run ./cmd/worker

Interrupt (Ctrl-C) to stop.
`, f.URL(), f.Workers(), f.Dir(), kept, server)
}

// demoSteps are the commands demo runs against its fleet.
var demoSteps = [][]string{
	{"run", "example", "sum"},
	{"graph", "daily_sales"},
	{"backfill", "daily_sales", "revenue", "--partitions", "2025-01-01..2025-01-14", "--parallel", "4"},
	{"status", "daily_sales", "revenue", "--partition", "2025-01-07"},
	{"get", "daily_sales", "revenue", "--partition", "2025-01-07"},
	{"run", "dynamic", "report", "--partition", "demo"},
	{"status", "dynamic", "prices", "--partition", "demo"},
	{"pipelines"},
}

func demoCmd(fs *flag.FlagSet) func(*env) error {
	port := fs.Int("port", -1, "NATS client `PORT` on 127.0.0.1 (-1: any free port)")
	dir := fs.String("dir", "", "data `DIR`, kept (default: a temp dir the demo makes and removes on exit)")
	latency := fs.Duration("source-latency", 100*time.Millisecond, "`DURATION` of simulated latency of every daily_sales.orders execution, to watch the progress")
	logs := fs.Bool("log", false, "write the coordinator's and workers' logs to stderr (JSON)")
	return func(e *env) error {
		f, err := e.startFleet(devfleet.Config{Port: *port, Dir: *dir, Workers: 2, SourceLatency: *latency}, *logs)
		if err != nil {
			return err
		}
		// A data directory the demo made is its own, and goes with the
		// fleet; one given with --dir is the user's, and is kept. Either
		// way the demo says which, before and after.
		temp := *dir == ""
		stopped := false
		defer func() {
			if !stopped {
				stopFleet(f)
			}
		}()
		if e.g.json {
			e.writeJSONLine(map[string]any{"step": "start", "output": map[string]any{"url": f.URL(), "dir": f.Dir(), "workers": f.Workers(), "remove_dir": temp}})
		} else {
			fate := "kept"
			if temp {
				fate = "a temporary directory, removed when the demo ends; pass --dir DIR to keep the data"
			}
			fmt.Fprintf(e.stdout, "Started a local fleet on %s: a coordinator and %d workers, data in %s (%s)\n", f.URL(), f.Workers(), f.Dir(), fate)
		}
		for _, step := range demoSteps {
			if err := e.demoStep(f, step); err != nil {
				return err
			}
		}
		stopped = true
		stopFleet(f)
		if !e.g.json {
			done := "its data is kept in " + f.Dir()
			if _, err := os.Stat(f.Dir()); temp && errors.Is(err, os.ErrNotExist) {
				done = "its data directory " + f.Dir() + " is removed"
			} else if temp {
				done = "its data directory " + f.Dir() + " could not be removed: remove it yourself"
			}
			fmt.Fprintf(e.stdout, "\nDone: the fleet has stopped and %s. Keep one running with: fsctl dev\n", done)
		}
		return nil
	}
}

// demoStep runs one fsctl command against the demo's fleet, as a user
// would, through the client.
func (e *env) demoStep(f *devfleet.Fleet, step []string) error {
	args := append(append([]string{}, step...), "--server", f.URL())
	if e.g.progress {
		args = append(args, "--progress")
	}
	sub := &env{ctx: e.ctx, stdout: e.stdout, stderr: e.stderr, g: defaultGlobals()}
	sub.g.json = e.g.json
	var out bytes.Buffer
	if e.g.json {
		sub.stdout = &out
	} else {
		fmt.Fprintf(e.stdout, "\n$ fsctl %s\n", strings.Join(step, " "))
	}
	code := sub.exit(sub.dispatch(args))
	sub.close()
	if e.g.json {
		var compact bytes.Buffer
		if json.Compact(&compact, out.Bytes()) != nil {
			compact.Reset()
			b, _ := json.Marshal(out.String())
			compact.Write(b)
		}
		e.writeJSONLine(map[string]any{"step": strings.Join(step, " "), "output": json.RawMessage(compact.Bytes())})
	}
	if code != ExitOK {
		return &exitError{code: code}
	}
	return nil
}
