package cli

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/bridge"
	"github.com/flowstone-go/flowstone/protocol"
)

func init() {
	commands = []*command{
		{name: "run", short: "materialize an asset (and missing dependencies); print the value", args: []string{"PIPELINE", "ASSET"}, minArgs: 2, maxArgs: 2, setup: runCmd,
			summary: "Materialize an asset's partition, running its missing dependencies first, and print\n" +
				"the value (or the job, with --async). A run that takes more than a second shows a spinner.",
			timeoutDoc: "the run's timeout `DURATION`: the fleet cancels the run after it, and fsctl waits as long (default 5m)"},
		{name: "get", short: "print a materialized value (raw bytes with --out FILE)", args: []string{"PIPELINE", "ASSET"}, minArgs: 2, maxArgs: 2, setup: getCmd,
			summary: "Print a materialized value as indented JSON (raw results as their bytes),\nor write its stored bytes to --out FILE. Never runs anything."},
		{name: "exists", short: "tell whether a value is materialized (exit 1 if not)", args: []string{"PIPELINE", "ASSET"}, minArgs: 2, maxArgs: 2, setup: existsCmd,
			summary: "Print true if the partition is materialized, else false and exit 1."},
		{name: "status", short: "show where an asset's partition stands", args: []string{"PIPELINE", "ASSET"}, minArgs: 2, maxArgs: 2, setup: statusCmd,
			summary: "Show where an asset's partition stands: state, run, completion time, duration, storage, error;\nfor a run scheduled with run --at, state scheduled and the time it starts; for a gate, how it\nwaits (waiting_approval, waiting_signal) or how it was decided."},
		{name: "cancel", short: "cancel running and scheduled runs of an asset's partition", args: []string{"PIPELINE", "ASSET"}, minArgs: 2, maxArgs: 2, setup: cancelCmd,
			summary: "Cancel the running, pending and scheduled runs of an asset's partition\n(exit 1 if nothing was running)."},
		{name: "invalidate", short: "delete materialized values (--cascade: and downstream)", args: []string{"PIPELINE", "ASSET"}, minArgs: 2, maxArgs: 2, setup: invalidateCmd,
			summary: "Delete an asset's materialized results so the next run recomputes them: one\npartition (--partition), several (--partitions FROM..TO or a,b,c) or every one\nthat has a record (--all); with --cascade also every downstream result of each.\nA partitioned asset needs one of those flags. Prints how many records were deleted\n(one per asset and partition that had one; 0 when there was nothing to delete)."},
		{name: "backfill", short: "run an asset over many partitions, with a progress bar", args: []string{"PIPELINE", "ASSET"}, minArgs: 0, maxArgs: 2, setup: backfillCmd,
			summary:    "Run an asset over many partitions with a progress bar; print the counts and each\nfailed partition's error (exit 1 if any failed). The fleet keeps the backfill by\nid and finishes it even if fsctl or a coordinator stops; --follow ID re-attaches\n(PIPELINE and ASSET are then left out), --async prints the id and returns.",
			timeoutDoc: "`DURATION` bounding the wait (default: none; fsctl waits as long as the backfill makes progress)"},
		{name: "approve", short: "let an asset's approval gate pass: the waiting run goes on", args: []string{"PIPELINE", "ASSET"}, minArgs: 2, maxArgs: 2, setup: decisionCmd(true),
			summary: "Approve the asset's partition where its approval gate waits: the run waiting there runs\nthe asset (its function runs now, after the approval) and then its dependents.\nExit 1 if nothing waits there."},
		{name: "reject", short: "reject an asset's waiting gate: it and its dependents fail", args: []string{"PIPELINE", "ASSET"}, minArgs: 2, maxArgs: 2, setup: decisionCmd(false),
			summary: "Reject the asset's partition where its gate waits (an approval or a signal): the asset\nfails with a rejected error (with --reason), its dependents with dependency_failed.\nThe last good value stays. Exit 1 if nothing waits there."},
		{name: "approvals", short: "list the gates that wait for an approval or a signal", args: []string{"[PIPELINE]"}, minArgs: 0, maxArgs: 1, setup: approvalsCmd,
			summary: "List the gates that wait (of one pipeline, or of all), oldest first: approvals with\ntheir message, signals with the token fsctl signal takes."},
		{name: "signal", short: "deliver a signal to the gate its token names", args: []string{"TOKEN"}, minArgs: 1, maxArgs: 1, setup: signalCmd,
			summary: "Deliver a signal, with --payload JSON, to the gate that TOKEN names (fsctl approvals\nlists it): the run waiting there goes on, and the asset makes its value of the payload.\nA token the fleet did not sign, or one already used, is refused (exit 1)."},
		{name: "schedules", short: "list schedules with their next and last ticks", args: []string{"[PIPELINE]"}, minArgs: 0, maxArgs: 1, setup: schedulesCmd,
			summary: "List the schedules (of one pipeline, or of all): cron, time zone, assets, whether paused,\nthe next tick, the last tick fired and its partition."},
		{name: "schedule", short: "pause or resume a schedule", args: []string{"ACTION", "PIPELINE", "NAME"}, minArgs: 3, maxArgs: 3, setup: pauseCmd("schedule"),
			summary: "Pause or resume a pipeline's schedule on every coordinator (ACTION is pause or resume).\nA resumed schedule counts its ticks from then: the ticks of the pause are not caught up."},
		{name: "sensors", short: "list sensors with their cursors and latest evaluations", args: []string{"[PIPELINE]"}, minArgs: 0, maxArgs: 1, setup: sensorsCmd,
			summary: "List the sensors (of one pipeline, or of all): interval, whether paused, the next and last\nevaluations, the cursor, counts, and the latest failure."},
		{name: "sensor", short: "pause or resume a sensor", args: []string{"ACTION", "PIPELINE", "NAME"}, minArgs: 3, maxArgs: 3, setup: pauseCmd("sensor"),
			summary: "Pause or resume a pipeline's sensor on every coordinator (ACTION is pause or resume)."},
		{name: "graph", short: "draw the pipeline's DAG (ascii, mermaid, dot)", args: []string{"PIPELINE"}, minArgs: 1, maxArgs: 1, setup: graphCmd,
			summary: "Draw the pipeline's DAG."},
		{name: "assets", short: "list the pipeline's assets", args: []string{"PIPELINE"}, minArgs: 1, maxArgs: 1, setup: assetsCmd,
			summary: "List the pipeline's assets, dependencies first."},
		{name: "info", short: "describe an asset", args: []string{"PIPELINE", "ASSET"}, minArgs: 2, maxArgs: 2, setup: infoCmd,
			summary: "Describe an asset: dependencies, description, partitioning."},
		{name: "pipelines", short: "list the pipelines the fleet hosts", minArgs: 0, maxArgs: 0, setup: pipelinesCmd,
			summary: "List the pipelines the fleet's workers host."},
		{name: "watch", short: "print the pipeline's events as they happen", args: []string{"PIPELINE", "[ASSET]"}, minArgs: 1, maxArgs: 2, setup: watchCmd,
			summary: "Print the pipeline's events (of one asset, if given) one per line as they happen,\nuntil interrupted."},
		{name: "dev", short: "run a local fleet (NATS, coordinator, workers) until interrupted", minArgs: 0, maxArgs: 0, setup: devCmd,
			summary: "Run a local fleet until interrupted: an embedded NATS server with JetStream, a\ncoordinator and --workers workers hosting the bundled pipelines, data in --dir."},
		{name: "demo", short: "start a local fleet, run the bundled pipelines, stop", minArgs: 0, maxArgs: 0, setup: demoCmd,
			summary: "Start a local fleet, run the bundled pipelines through it (a run, a graph, a\nbackfill with progress, a status, a value, the pipelines), stop it."},
		{name: "completion", short: "print a shell completion script (bash, zsh, fish)", args: []string{"SHELL"}, minArgs: 1, maxArgs: 1, setup: completionCmd,
			summary: "Print a completion script for SHELL (bash, zsh or fish): verbs, flags, and the\n" +
				"fleet's pipeline and asset names. Load it with\n" +
				"  source <(fsctl completion bash)      (bash; zsh the same with zsh)\n" +
				"  fsctl completion fish | source       (fish)"},
		{name: "version", short: "print fsctl's version", minArgs: 0, maxArgs: 0, setup: versionCmd,
			summary: "Print fsctl's version and protocol version."},
	}
}

// partitionFlag defines --partition.
func partitionFlag(fs *flag.FlagSet) *optString {
	p := new(optString)
	fs.Var(p, "partition", "the `PARTITION` key (a date 2025-01-15, a region, a key the asset takes; default \"default\", the one partition of an unpartitioned asset)")
	return p
}

// options returns the Partition option if --partition was given.
func (o *optString) partition() []flowstone.PartitionOption {
	if !o.set {
		return nil
	}
	return []flowstone.PartitionOption{flowstone.Partition(o.v)}
}

func getOpts(p *optString, storage string) []flowstone.GetOption {
	var opts []flowstone.GetOption
	for _, o := range p.partition() {
		opts = append(opts, o)
	}
	if storage != "" {
		opts = append(opts, flowstone.Storage(storage))
	}
	return opts
}

func runCmd(fs *flag.FlagSet) func(*env) error {
	part := partitionFlag(fs)
	force := fs.Bool("force", false, "re-run even if materialized (dependencies are reused)")
	noDeps := fs.Bool("no-deps", false, "fail with dependency_failed instead of running missing dependencies")
	async := fs.Bool("async", false, "enqueue the run and print its job at once; read the value later with get")
	priority := fs.Int("priority", 0, "priority `N`, 0 (default) to 3 (highest), served first when the fleet is saturated")
	at := fs.String("at", "", "start no earlier than `TIME` (RFC 3339, like 2025-01-15T09:00:00Z); implies --async")
	storage := fs.String("storage", "", "object store `NAME` for the result (default: the fleet's)")
	out := fs.String("out", "", "write the value's stored bytes to `FILE` instead of printing it")
	return func(e *env) error {
		opts := []flowstone.RunOption{flowstone.Priority(*priority)}
		for _, o := range part.partition() {
			opts = append(opts, o)
		}
		if *force {
			opts = append(opts, flowstone.Force())
		}
		if *noDeps {
			opts = append(opts, flowstone.WithDeps(false))
		}
		if *async || *at != "" {
			opts = append(opts, flowstone.Async())
		}
		if *at != "" {
			t, err := time.Parse(time.RFC3339, *at)
			if err != nil {
				return usageErr(e.cmd, "--at %q is not an RFC 3339 time like 2025-01-15T09:00:00Z", *at)
			}
			opts = append(opts, flowstone.ScheduledAt(t))
		}
		if *storage != "" {
			opts = append(opts, flowstone.Storage(*storage))
		}
		if e.g.timeout > 0 {
			opts = append(opts, flowstone.Timeout(e.g.timeout))
		}
		c, err := e.client()
		if err != nil {
			return err
		}
		var res *flowstone.Result
		err = e.withSpinner("running "+e.args[1], func() error {
			res, err = c.Run(e.ctx, e.args[0], e.args[1], opts...)
			return err
		})
		if err != nil {
			return err
		}
		return e.printResult(e.ctx, res, *out)
	}
}

func getCmd(fs *flag.FlagSet) func(*env) error {
	part := partitionFlag(fs)
	storage := fs.String("storage", "", "read from the object store `NAME` (default: where it was stored)")
	out := fs.String("out", "", "write the value's stored bytes to `FILE` instead of printing it")
	return func(e *env) error {
		c, err := e.client()
		if err != nil {
			return err
		}
		res, err := c.Get(e.ctx, e.args[0], e.args[1], getOpts(part, *storage)...)
		if err != nil {
			return err
		}
		return e.printResult(e.ctx, res, *out)
	}
}

func existsCmd(fs *flag.FlagSet) func(*env) error {
	part := partitionFlag(fs)
	storage := fs.String("storage", "", "look in the object store `NAME` only")
	return func(e *env) error {
		c, err := e.client()
		if err != nil {
			return err
		}
		ok, err := c.Exists(e.ctx, e.args[0], e.args[1], getOpts(part, *storage)...)
		if err != nil {
			return err
		}
		if e.g.json {
			e.writeJSON(map[string]bool{"exists": ok})
		} else {
			fmt.Fprintln(e.stdout, ok)
		}
		if !ok {
			return &exitError{code: ExitFailed}
		}
		return nil
	}
}

func statusCmd(fs *flag.FlagSet) func(*env) error {
	part := partitionFlag(fs)
	return func(e *env) error {
		c, err := e.client()
		if err != nil {
			return err
		}
		st, err := c.Status(e.ctx, e.args[0], e.args[1], getOpts(part, "")...)
		if err != nil {
			return err
		}
		if e.g.json {
			return e.writeJSON(st)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "state:\t%s\n", st.State)
		fmt.Fprintf(tw, "partition:\t%s\n", safe(st.Partition))
		if st.RunID != "" {
			fmt.Fprintf(tw, "run_id:\t%s\n", st.RunID)
		}
		if st.ScheduledAt != nil {
			fmt.Fprintf(tw, "scheduled_at:\t%s\n", st.ScheduledAt.Format(time.RFC3339Nano))
		}
		if st.CompletedAt != nil {
			fmt.Fprintf(tw, "completed_at:\t%s\n", st.CompletedAt.Format(time.RFC3339Nano))
		}
		if st.DurationMS > 0 || st.State == flowstone.StateCompleted {
			fmt.Fprintf(tw, "duration:\t%s\n", time.Duration(st.DurationMS)*time.Millisecond)
		}
		if st.Storage != "" {
			fmt.Fprintf(tw, "storage:\t%s\n", st.Storage)
		}
		if st.Error != nil {
			fmt.Fprintf(tw, "error:\t%s\n", oneLine(st.Error.Error()))
		}
		if st.Skip != nil {
			fmt.Fprintf(tw, "skipped:\t%s\n", oneLine(st.Skip.String()))
		}
		if st.Route != "" {
			fmt.Fprintf(tw, "route:\t%s (the router's decision)\n", st.Route)
		}
		printGate(tw, st.Gate)
		if s := st.Scatter; s != nil {
			fmt.Fprintf(tw, "scatter:\t%d total, %d completed, %d failed, %d cancelled, %d pending\n", s.Total, s.Completed, s.Failed, s.Cancelled, s.Pending)
			for i, f := range s.FailedItems {
				if i == 10 {
					fmt.Fprintf(tw, "\t... %d more failed items listed with --json\n", len(s.FailedItems)-i)
					break
				}
				fmt.Fprintf(tw, "failed item:\t%s: %s\n", f.Item, oneLine(f.Error.Error()))
			}
		}
		if v := st.Value; v != nil && (st.State != flowstone.StateCompleted || v.RunID != st.RunID) {
			// The value get returns is not the latest attempt's.
			fmt.Fprintf(tw, "value:\tfrom run %s, completed %s, %d bytes in %s\n", v.RunID, v.CompletedAt.Format(time.RFC3339Nano), v.Size, v.Storage)
		}
		return tw.Flush()
	}
}

func cancelCmd(fs *flag.FlagSet) func(*env) error {
	part := partitionFlag(fs)
	return func(e *env) error {
		c, err := e.client()
		if err != nil {
			return err
		}
		opts := getOpts(part, "")
		if err := c.Cancel(e.ctx, e.args[0], e.args[1], opts...); err != nil {
			return err
		}
		p := bridge.ResolveGet(opts...).Partition
		if e.g.json {
			return e.writeJSON(map[string]any{"cancelled": true, "asset": e.args[1], "partition": p})
		}
		fmt.Fprintf(e.stdout, "cancelled %s [%s]\n", e.args[1], safe(p))
		return nil
	}
}

func invalidateCmd(fs *flag.FlagSet) func(*env) error {
	part := partitionFlag(fs)
	parts := fs.String("partitions", "", "the partitions: an inclusive date range `FROM..TO` (2025-01-01..2025-01-31) or a list a,b,c")
	all := fs.Bool("all", false, "every partition of the asset that has a record (with --cascade: of the asset or anything downstream)")
	cascade := fs.Bool("cascade", false, "also invalidate everything downstream, for each partition invalidated")
	return func(e *env) error {
		named := 0
		for _, on := range []bool{part.set, *parts != "", *all} {
			if on {
				named++
			}
		}
		if named > 1 {
			return usageErr(e.cmd, "--partition, --partitions and --all are exclusive: give one")
		}
		var opts []flowstone.InvalidateOption
		for _, o := range part.partition() {
			opts = append(opts, o)
		}
		if *parts != "" {
			keys, err := partitionsFlag(e.cmd, *parts)
			if err != nil {
				return err
			}
			opts = append(opts, flowstone.Partitions(keys...))
		}
		if *all {
			opts = append(opts, flowstone.AllPartitions())
		}
		if *cascade {
			opts = append(opts, flowstone.Cascade())
		}
		c, err := e.client()
		if err != nil {
			return err
		}
		n, err := c.Invalidate(e.ctx, e.args[0], e.args[1], opts...)
		if fe := flowstone.AsError(err); named == 0 && fe != nil && fe.Type == flowstone.TypeBadRequest && fe.Details["missing"] == "partitions" {
			// A partitioned asset: the default partition is none of its.
			return usageErr(e.cmd, "%s is partitioned (by %v): name the partitions with --partition KEY, --partitions FROM..TO or a,b,c, or --all",
				e.args[1], cmp.Or(fe.Details["partitioned_by"], any("its scheme")))
		}
		if err != nil {
			return err
		}
		if e.g.json {
			return e.writeJSON(map[string]int{"invalidated": n})
		}
		fmt.Fprintf(e.stdout, "invalidated %d result(s)\n", n)
		return nil
	}
}

// partitionsFlag reads --partitions: an inclusive date range FROM..TO
// (refused past flowstone.MaxDateRangeDays before a key is built) or a
// comma-separated list.
func partitionsFlag(cmd *command, s string) ([]string, error) {
	if strings.Contains(s, "..") {
		days, err := flowstone.ParseDateRange(s)
		if err != nil {
			return nil, usageErr(cmd, "--partitions: %s", flowstone.AsError(err).Message)
		}
		return days, nil
	}
	list, ok := listFlag(s)
	if !ok {
		return nil, usageErr(cmd, "--partitions %q has an empty item", s)
	}
	return list, nil
}

func backfillCmd(fs *flag.FlagSet) func(*env) error {
	parts := fs.String("partitions", "", "the partitions: an inclusive date range `FROM..TO` (2025-01-01..2025-01-31) or a list a,b,c (required)")
	parallel := fs.Int("parallel", defaultBackfillParallel, fmt.Sprintf("`N` partitions run at once, 1 to %d; the default, %d, keeps one worker's slots (its default --concurrency) busy, and the fleet queues what its workers cannot take yet", flowstone.MaxParallel, defaultBackfillParallel))
	onError := fs.String("on-error", "continue", "`POLICY` on a failed partition: continue with the others, or halt (start no more)")
	force := fs.Bool("force", false, "re-run partitions that are materialized")
	async := fs.Bool("async", false, "print the backfill's id and return; follow it later with --follow")
	follow := fs.String("follow", "", "follow the backfill `ID` (printed by an earlier backfill) until it ends")
	return func(e *env) error {
		if *follow != "" {
			if len(e.args) > 0 || *parts != "" || *async {
				return usageErr(e.cmd, "--follow takes a backfill id alone: no PIPELINE, ASSET, --partitions or --async")
			}
			return e.followBackfill(*follow)
		}
		if len(e.args) != 2 {
			return usageErr(e.cmd, "backfill takes PIPELINE ASSET (or --follow ID), got %d argument(s)", len(e.args))
		}
		if *parts == "" {
			return usageErr(e.cmd, "backfill needs --partitions FROM..TO or --partitions a,b,c")
		}
		keys, err := partitionsFlag(e.cmd, *parts)
		if err != nil {
			return err
		}
		if *parallel < 1 || *parallel > flowstone.MaxParallel {
			return usageErr(e.cmd, "--parallel must be 1 to %d, got %d", flowstone.MaxParallel, *parallel)
		}
		opts := []flowstone.BackfillOption{flowstone.Partitions(keys...), flowstone.Parallel(*parallel)}
		switch *onError {
		case "continue":
		case "halt":
			opts = append(opts, flowstone.OnError(flowstone.Halt))
		default:
			return usageErr(e.cmd, "--on-error is halt or continue, not %q", *onError)
		}
		if *force {
			opts = append(opts, flowstone.Force())
		}
		ctx, cancel := e.waitContext()
		defer cancel()
		c, err := e.client()
		if err != nil {
			return err
		}
		if *async {
			stats, err := c.Backfill(ctx, e.args[0], e.args[1], append(opts, flowstone.Async())...)
			if err != nil {
				return err
			}
			if e.g.json {
				return e.writeJSON(map[string]string{"id": stats.ID})
			}
			fmt.Fprintf(e.stdout, "backfill %s accepted: follow it with fsctl backfill --follow %s\n", stats.ID, stats.ID)
			return nil
		}
		bar := e.newBackfillBar("backfill " + e.args[1])
		if bar != nil {
			opts = append(opts, flowstone.OnProgress(bar.progress))
		}
		stats, err := c.Backfill(ctx, e.args[0], e.args[1], opts...)
		bar.end(err)
		if err != nil {
			return err
		}
		return e.printBackfill(stats)
	}
}

// defaultBackfillParallel is --parallel's default: a worker's slots at its
// default concurrency. One at a time (the library's default) left a
// year of daily_sales taking seconds on a fleet that does it in a fraction
// of one.
const defaultBackfillParallel = 64

// followBackfill is backfill --follow: the same bar and output as the
// backfill itself.
func (e *env) followBackfill(id string) error {
	ctx, cancel := e.waitContext()
	defer cancel()
	c, err := e.client()
	if err != nil {
		return err
	}
	var opts []flowstone.BackfillOption
	bar := e.newBackfillBar("backfill " + id)
	if bar != nil {
		opts = append(opts, flowstone.OnProgress(bar.progress))
	}
	stats, err := c.FollowBackfill(ctx, id, opts...)
	bar.end(err)
	if err != nil {
		return err
	}
	return e.printBackfill(stats)
}

// waitContext bounds a wait by --timeout, if given.
func (e *env) waitContext() (context.Context, context.CancelFunc) {
	if e.g.timeout > 0 {
		return context.WithTimeout(e.ctx, e.g.timeout)
	}
	return context.WithCancel(e.ctx)
}

// printBackfill prints an ended backfill's counts and errors; a failed
// partition makes the exit status 1.
func (e *env) printBackfill(stats flowstone.BackfillStats) error {
	if e.g.json {
		e.writeJSON(stats)
	} else {
		total := stats.Succeeded + stats.Failed + stats.Skipped + stats.NotStarted
		fmt.Fprintf(e.stdout, "%d succeeded, %d failed, %d skipped", stats.Succeeded, stats.Failed, stats.Skipped)
		if stats.NotStarted > 0 {
			fmt.Fprintf(e.stdout, ", %d not started", stats.NotStarted)
		}
		fmt.Fprintf(e.stdout, " (of %d partitions; backfill %s)\n", total, stats.ID)
		if n := len(stats.NotStartedPartitions); n > 0 {
			names := make([]string, n)
			for i, p := range stats.NotStartedPartitions {
				names[i] = safe(p)
			}
			fmt.Fprintf(e.stdout, "  not started: %s", strings.Join(names, ", "))
			if more := stats.NotStarted - n; more > 0 {
				fmt.Fprintf(e.stdout, " and %d more", more)
			}
			fmt.Fprintln(e.stdout)
		}
		failed := make([]string, 0, len(stats.Errors))
		for p := range stats.Errors {
			failed = append(failed, p)
		}
		sort.Strings(failed)
		for _, p := range failed {
			fmt.Fprintf(e.stdout, "  %s: %s\n", safe(p), oneLine(stats.Errors[p].Error()))
		}
		if more := stats.Failed - len(stats.Errors); more > 0 {
			fmt.Fprintf(e.stdout, "  ... and %d more failed partition(s)\n", more)
		}
	}
	if stats.Failed > 0 {
		return &exitError{code: ExitFailed}
	}
	return nil
}

func graphCmd(fs *flag.FlagSet) func(*env) error {
	format := fs.String("format", "ascii", "`ascii`, mermaid or dot")
	return func(e *env) error {
		f, err := flowstone.ParseGraphFormat(*format)
		if err != nil {
			return usageErr(e.cmd, "--format is ascii, mermaid or dot, not %q", *format)
		}
		c, err := e.client()
		if err != nil {
			return err
		}
		g, err := c.Graph(e.ctx, e.args[0], flowstone.Format(f))
		if err != nil {
			return err
		}
		if e.g.json {
			return e.writeJSON(map[string]string{"graph": g})
		}
		fmt.Fprint(e.stdout, g)
		if !strings.HasSuffix(g, "\n") {
			fmt.Fprintln(e.stdout)
		}
		return nil
	}
}

func assetsCmd(fs *flag.FlagSet) func(*env) error {
	return func(e *env) error {
		c, err := e.client()
		if err != nil {
			return err
		}
		assets, err := c.Assets(e.ctx, e.args[0])
		if err != nil {
			return err
		}
		if e.g.json {
			return e.writeJSON(map[string][]string{"assets": assets})
		}
		for _, a := range assets {
			fmt.Fprintln(e.stdout, a)
		}
		return nil
	}
}

func infoCmd(fs *flag.FlagSet) func(*env) error {
	return func(e *env) error {
		c, err := e.client()
		if err != nil {
			return err
		}
		info, err := c.AssetInfo(e.ctx, e.args[0], e.args[1])
		if err != nil {
			return err
		}
		if e.g.json {
			return e.writeJSON(info)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "name:\t%s\n", info.Name)
		fmt.Fprintf(tw, "description:\t%s\n", info.Description)
		fmt.Fprintf(tw, "depends_on:\t%s\n", strings.Join(info.DependsOn, ", "))
		if len(info.OptionalDeps) > 0 {
			fmt.Fprintf(tw, "optional_deps:\t%s\n", strings.Join(info.OptionalDeps, ", "))
		}
		partitioned := info.PartitionedBy
		if partitioned == "" {
			partitioned = "(none: its dependencies' partitions, or only \"default\")"
		}
		fmt.Fprintf(tw, "partitioned_by:\t%s\n", partitioned)
		fmt.Fprintf(tw, "scatter:\t%v\n", info.Scatter)
		fmt.Fprintf(tw, "parallel:\t%v\n", info.Parallel)
		if j := info.Join; j != nil {
			names := slices.Sorted(maps.Keys(info.Branches))
			for _, b := range names {
				optional := ""
				if slices.Contains(j.Optional, b) {
					optional = " (optional)"
				}
				fmt.Fprintf(tw, "branch:\t%s → %s%s\n", b, info.Branches[b], optional)
			}
			join := string(j.Mode)
			if j.Timeout > 0 {
				join += fmt.Sprintf(", timeout %v", j.Timeout)
			}
			fmt.Fprintf(tw, "join:\t%s\n", join)
		}
		if n := len(info.Route); n > 0 {
			fmt.Fprintf(tw, "route:\t%s, otherwise %s\n", strings.Join(info.Route[:n-1], ", "), info.Route[n-1])
		}
		switch {
		case info.HasApproval:
			fmt.Fprintf(tw, "gate:\tapproval (waits for fsctl approve before it runs)\n")
		case info.HasSignal:
			fmt.Fprintf(tw, "gate:\tsignal (waits for fsctl signal before it runs)\n")
		}
		return tw.Flush()
	}
}

func pipelinesCmd(fs *flag.FlagSet) func(*env) error {
	return func(e *env) error {
		c, err := e.client()
		if err != nil {
			return err
		}
		ps, err := c.Pipelines(e.ctx)
		if err != nil {
			return err
		}
		if e.g.json {
			if ps == nil {
				ps = []protocol.PipelineSummary{}
			}
			return e.writeJSON(map[string]any{"pipelines": ps})
		}
		if len(ps) == 0 {
			fmt.Fprintln(e.stdout, "no pipelines: no worker is running (start some with fsctl dev --workers N, or cmd/worker)")
			return nil
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PIPELINE\tASSETS\tWORKERS")
		for _, p := range ps {
			fmt.Fprintf(tw, "%s\t%d\t%d\n", p.Name, p.Assets, p.Workers)
		}
		return tw.Flush()
	}
}

func watchCmd(fs *flag.FlagSet) func(*env) error {
	return func(e *env) error {
		c, err := e.client()
		if err != nil {
			return err
		}
		asset := ""
		if len(e.args) > 1 {
			asset = e.args[1]
		}
		if !e.g.json {
			fmt.Fprintf(e.stderr, "watching %s events; interrupt (Ctrl-C) to stop\n", e.args[0])
		}
		return c.Watch(e.ctx, e.args[0], func(ev protocol.Event) {
			if asset != "" && ev.Asset != asset {
				return
			}
			if e.g.json {
				e.writeJSONLine(ev)
				return
			}
			fmt.Fprintln(e.stdout, eventLine(ev))
		})
	}
}

// eventLine is an event on one line: time, kind, asset [partition], run,
// duration, worker, error.
func eventLine(ev protocol.Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %-19s %s [%s] run=%s", ev.Time.Format("15:04:05.000"), ev.Kind, ev.Asset, safe(ev.Partition), ev.RunID)
	if ev.DurationNS > 0 {
		fmt.Fprintf(&b, " took=%s", time.Duration(ev.DurationNS).Round(time.Microsecond))
	}
	if w, ok := ev.Metadata["worker"].(string); ok {
		fmt.Fprintf(&b, " worker=%s", w)
	}
	if ev.Error != nil {
		fmt.Fprintf(&b, " error=%s", oneLine(ev.Error.Error()))
	}
	return b.String()
}
