/*
Package flowstone is asset-first data orchestration. An asset is a named
piece of data (a table, a file, a report) with a function that computes it
and the assets it depends on. You ask for an asset; FlowStone works out the
graph, materializes what is missing, keeps each result per partition (a
date, a region, any key you declare), and lets you get, inspect, invalidate, backfill
and cancel materializations.

The same API runs embedded in one process with no configuration, which is
what this package does by itself, and on a NATS JetStream worker fleet (see
The fleet below).

# Defining assets

A pipeline is a named set of assets. Each asset is a function from a
[*Context] to a value, with options such as [DependsOn] and [Description]:

	p := flowstone.MustPipeline("sales",
		flowstone.Asset("numbers", func(c *flowstone.Context) (any, error) {
			return []int{1, 2, 3, 4, 5}, nil
		}),
		flowstone.Asset("doubled", func(c *flowstone.Context) (any, error) {
			nums, err := flowstone.Dep[[]int](c, "numbers")
			if err != nil {
				return nil, err
			}
			for i := range nums {
				nums[i] *= 2
			}
			return nums, nil
		}, flowstone.DependsOn("numbers"), flowstone.Description("Doubles each number")),
	)

[NewPipeline] checks the definition and reports, as an [*Error] naming the
culprit, bad names, duplicates, missing functions, dependencies that are not
in the pipeline and cycles (with their path). [MustPipeline] panics instead,
for package-level pipelines.

An asset reads its dependencies with [Dep], typed by a type parameter. The
value crosses the engine's [Codec] (JSON by default) on its way to the
object store and back, in memory too, so a value that cannot be encoded
fails while you develop, not on the fleet. An asset that returns []byte or
an [io.Reader] is stored as is and streamed; Dep of []byte, string,
io.Reader or io.ReadCloser reads such a value back raw. A result of at most
[InlineLimit] bytes is kept inside its materialization record (its storage
is [InlineStorage]) unless [Storage] or [StorageOf] names a store: small
results cost no object write.

The [*Context] also gives the partition, the run id, a logger and a
[context.Context] that is cancelled when the run is cancelled or times out.
Other asset options: [OptionalDeps] (use a dependency when it succeeds),
[PartitionedBy], [Timeout], [Retry], [StorageOf], [Scatter], which fans
an asset out over a list of items, runs its function once per item with
bounded parallelism and gathers a JSON object from item to value.
[Approval] and [WaitForSignal] hold an asset back until it is approved or
signalled (see Gates). [Join] and [Route] join parallel branches and route
a run between branches (see Parallel branches and routing).

# Parallel branches and routing

[Join] makes an asset join named parallel branches ([Branches]: branch name
→ the asset the branch ends in). The end assets are its dependencies, so
the engine runs the branches concurrently like any independent
dependencies, with no scheduler of its own; the join's function reads
their outcomes with [Context.Branches], a [BranchResult] each: a value
(decoded like [Dep]), an error, or skipped. In [AllOrNothing] mode (the
default) every branch must succeed, and a failed one fails the join with
a DependencyFailed error whose details name the branch; in [Partial] mode
the branches of [JoinConfig].Optional may fail, and the join sees their
errors. [JoinConfig].Timeout bounds the branches from when the first of
them starts to execute: a branch is its end asset and what only it needs
upstream, and those not done by then are cancelled with a Timeout error.
[Info].Parallel reports a join.

[Route] makes an asset a router: it has no function, and its value is its
decision, the name of the branch it picked, trying [When] conditions in
order and falling back to [Otherwise]. The decision is the router's
materialization: a run resumed after a crash, or on another coordinator,
reads it from the router's record and never evaluates the conditions
again. The branches not picked are skipped ([StateSkipped], with a [Skip]
saying why, and a run.skipped event): they never execute, and their last
good value is kept. A dependent that uses a skipped asset ([OptionalDeps],
or an optional branch of a Partial join) runs and sees it absent: [Dep]
returns a NotFound error. One that needs it ([DependsOn]) is skipped too,
transitively, and a run whose target is skipped fails with a Skipped error.
(A dependent that needs a branch not taken could have failed, though
nothing went wrong, or run without what it declared it needs; skipped, a
route's branch may be a whole sub-pipeline, which the join downstream
reads with OptionalDeps.) Routing decides within a run: a branch asked
for directly that has a value returns it cached, as any asset, and a
branch's other dependencies run whether or not it is picked, so work only
a branch needs belongs in it or downstream of it.

# Running

[Run] materializes an asset and returns a [*Result]; read the value with
[Result.Decode]:

	res, err := flowstone.Run(ctx, p, "doubled")
	...
	var doubled []int
	err = res.Decode(&doubled)

Missing dependencies are materialized first, independent branches in
parallel on a bounded pool. A materialized asset/partition is never
recomputed unless forced or invalidated: a second Run returns the cached
result (Result.Cached is true) and executes nothing. Concurrent runs of the
same asset/partition execute it once and all get the result.

Options: [Partition], [Force] (re-run the target; its materialized
dependencies are reused), [WithDeps](false) (run only the target, failing
with a DependencyFailed error that names the dependency that is not
materialized), [Timeout] for the whole run, [Storage], and for the fleet
[Async], [Priority] and [ScheduledAt]. Embedded, Async is a ConfigError that
says how to connect a fleet.

The other verbs are the API proposal's: [Get] and [Exists] read without
running anything; [Status] tells where an asset stands (pending, running,
completed, failed, cancelled, skipped, not_found, waiting_approval,
waiting_signal, with scatter counts and the gate); [Cancel]
cancels the running functions' contexts and keeps pending steps from
starting; [Invalidate] deletes results of one [Partition], of
[Partitions] or a [DateRange], or of [AllPartitions], and with [Cascade]
everything downstream of each; [Backfill] runs an asset over
[Partitions] or a [DateRange], [Parallel] at a time, with [OnError](Halt) to
stop at the first failure. [Graph] draws the DAG as an ASCII tree, Mermaid or
DOT; [Assets] and [AssetInfo] describe it.

Each verb exists three times: as a package function on the [Default]
engine, as a method of [*Pipeline] (p.Run(ctx, "doubled")), and as a method
of an [*Engine] built with [NewEngine], for other stores or for isolation.
An engine owns the goroutines it runs steps and executions on, and keeps
idle ones for reuse: [Engine.Stop] lets the runs in flight finish (and
cancels them once its context ends) and waits for every one of those
goroutines; [Engine.Close] is Stop without a limit. The [Default] engine
lives as long as the program.

# Partitions

A partition is a key with a stable text form: "2025-01-15", "us",
"us_east|2025-01-15" ([JoinPartition]). Without [Partition] calls use
[DefaultPartition]. [Dates], [Hours] and [ParseDateRange] list keys,
[DatePartition] and [HourPartition] build them, and [PartitionedBy] with
[Daily], [Hourly], [Static] or [AnyKey] says which keys an asset takes: every
verb (run, get, exists, status, cancel, invalidate, backfill, seed), embedded
or on the fleet, refuses a foreign key with a BadRequest error before
anything executes or is read. An asset takes the keys of every scheme
declared on it and upstream of it; an asset with no partitioned asset
upstream or downstream is unpartitioned: its one partition is
[DefaultPartition], and any other key is refused, so a caller cannot make
copies of it under made-up keys. A key is any text up to [MaxPartitionLen]
bytes of UTF-8 that its schemes accept: keys are encoded with
[PartitionToken] before they reach kv keys, subjects, object keys or file
names. An empty key is an error.

# Errors

Every error FlowStone returns on purpose is an [*Error] with a [ErrorType],
a message that says what went wrong and what to do, and details for
programs. Match the type with [errors.Is] against the sentinels and read the
fields with [errors.As]:

	_, err := flowstone.Run(ctx, p, "report")
	if errors.Is(err, flowstone.ErrDependencyFailed) {
		var fe *flowstone.Error
		errors.As(err, &fe)
		log.Printf("root cause in %v: %v", fe.Details["root_asset"], fe.Details["root_error"])
	}

A failed dependency fails its dependents with DependencyFailed naming the
asset where the failure started; a panic becomes an ExecutionFailed error
with the stack in its details. The types are the proposal's
(asset_not_found, dependency_failed, config_error, storage_error, timeout,
cancelled, scatter_threshold) and a few more (execution_failed, not_found,
bad_request, pipeline_not_found, unavailable, internal, rejected, skipped);
they cross the fleet's wire unchanged.

# Gates

An asset can wait, each time it is about to run, for a person's approval
([Approval]) or for a signal from outside ([WaitForSignal]):

	flowstone.Asset("publish", publish, flowstone.DependsOn("build"),
		flowstone.Approval(flowstone.ApprovalConfig{Message: "Publish?", Timeout: 24 * time.Hour}))

The gate stops the step before the asset executes, once its dependencies
are materialized: the engine writes the record's new state,
[StateWaitingApproval] or [StateWaitingSignal], with the gate's deadline
([Materialization.Gate]), and waits. Nothing is dispatched and no
execution slot (on the fleet, no worker) is held meanwhile. Then:

  - [Approve] lets the run go on: it dispatches the asset as any other, so
    the asset's function runs after the approval, with its dependencies'
    values, and its dependents follow. The approval is of that execution;
    there is no value computed before it to approve.
  - [Reject] fails the asset with a [TypeRejected] error carrying the
    [Reason]; the waiting run's dependents fail with a DependencyFailed
    error naming it. The last good value stays.
  - Past its Timeout ([DefaultGateTimeout] when unset) the gate expires:
    the asset fails with a Timeout error, or a signal gate's OnTimeout
    makes its value.
  - [Engine.Signal] delivers a signal to a signal gate, named by its token
    (see below): the asset's OnSignal makes its value from the payload
    (without OnSignal the payload is the value). A signal asset's value
    comes from its handlers: its function is nil.
  - The run ending (Cancel, which reaches a waiting gate too, or its
    timeout) ends the gate with it.

[Approvals] lists the gates that wait, approvals and signals. A signal
gate's entry carries its token: HMAC-SHA256, keyed with
[EngineConfig.SignalSecret], over the run, the pipeline, the asset, the
partition and when the gate opened, computed whenever it is listed and
never stored (reading the store does not give tokens away), checked in
constant time. A token the secret did not sign is a BadRequest error; one
whose gate no longer waits (signalled, rejected, expired, its run ended)
a NotFound error, so a signal is delivered once. Neither changes anything.
There is no built-in secret: an engine without one refuses, before
anything runs, every run that may reach a signal gate, and every signal,
with a ConfigError. The [Default] engine has none.

A materialized gated asset that a run reuses asks for nothing. Runs that
need the same gated partition at the same time wait at one gate: the
first opens it, the others wait for it, run on its approval without
executing the asset again, and end with it if it is rejected or expires.
A run's Timeout bounds its work, not its gates: it is extended by the
wait of every gate the run may pass. A run waiting at a gate is a run in
flight: [Engine.Stop] waits for it like any other (decide it, cancel it,
or give Stop a deadline).

On the fleet, the coordinator that drives a run waits at its gates; the
gate's record is the state, so a coordinator restarted while a run waits
resumes the run and finds the gate waiting, with its deadline, and an
expiry fires whoever drives the run then. (A coordinator that stops
waits its grace for such runs too, then hands them back.) A decision may reach any
coordinator: it writes the record and tells the others, so that the one
driving the run goes on at once. Coordinators take the signal secret from
their configuration (the same on all of them).

# Schedules and sensors

Pipeline.Automate declares schedules (Schedule: a cron expression, a
Selection of assets, InTimeZone, MapTick for the partition a tick runs,
CatchUp for the ticks missed while nothing ran them) and sensors (Sensor:
a function evaluated every interval with a durable cursor, returning
SensorRun requests deduplicated by run key; package sensors bundles
sensors for new objects under a prefix and new messages of a stream).
Engine.StartAutomation runs them in this process until its context ends
or the engine stops; Engine.Schedules and Engine.Sensors list them with
their next and last ticks and cursors; PauseAutomation and
ResumeAutomation pause and resume one.

Their state is kept in the engine's store, one key each, changed by
compare-and-set, and the runs they start have run ids made of the
schedule and the tick (of the sensor and the run key) that start once:
engines sharing a store, and a fleet's coordinators, fire each tick and
evaluate each interval once between them. Schedule documents the
catch-up policy and daylight saving time, Sensor what makes an
evaluation fail (it keeps the cursor and starts nothing). On the fleet,
schedules travel in the pipeline's manifest; a worker hosting the
pipeline evaluates a sensor for the coordinator that claimed its
interval.

# Telemetry

[Engine.Subscribe] registers a function for every [Event]: run.start,
run.stop and run.exception for each execution, storage.load.* and
storage.store.* with the storage, key (none for inline results) and byte
count, scatter.start,
scatter.item.start, scatter.item.stop and scatter.stop, for gates
gate.wait, gate.approved, gate.rejected, gate.signalled and gate.expired
(from the engine that drives the run), and run.skipped for an asset a run
skipped (see Route; the engine emits it, on a fleet the coordinator). Stop
events carry the
duration, failures the [*Error]. A cached result executes nothing and emits
no run events. Subscribers run on the executing goroutine, so they must be
quick; with none, events are not even built.

# Testing

Give each test its own engine ([NewEngine] with a zero [EngineConfig]) and
tests never share results and can run in parallel. Package flowstonetest
runs one asset with dependency values supplied by the test, without running
anything upstream:

	res, err := flowstonetest.RunAsset(t, p, "doubled",
		map[string]any{"numbers": []int{10, 20}})

It builds on [Engine.Seed], which stores a value as an asset's materialized
result.

# Records

Each asset/partition has one [Materialization] record in the metadata
store. It keeps two things apart: the latest attempt (State, RunID,
Attempt, Error, times) and the last good value (Value). [Get], [Exists] and
dependents read the value; [Status] reports the attempt and, in
StatusInfo.Value, the value it left. A failed, timed-out or cancelled
attempt never removes a value; only [Invalidate] does.

Records change only through the transitions of one writer, each a
compare-and-set on the revision the writer last saw. On a conflict the
writer reads the record again and decides again from what it holds now:
nothing is written blindly. The states and who moves them:

	not_found ─queue/pend─► pending ─claim─► running ─finish─► completed | failed | cancelled
	                           ▲                │
	                           └── hand back ◄──┘   (worker stopping, lease lapsed)

	an asset with a gate, once its dependencies are materialized:

	pending ─open gate─► waiting_approval ─approve────────► pending (gate passed) ─queue/claim─► ...
	                     waiting_signal   ─signal─────────► pending (payload kept for the execution)
	                                      ─expire─────────► pending (signal gate with OnTimeout)
	                                      ─reject, expire─► failed (value kept)

	not_found | pending | completed | failed | cancelled ─skip─► skipped   (a router chose another branch)

The transitions:

  - pend: a run waits for the asset's dependencies (not over a record
    another run holds).
  - queue: a fleet coordinator is about to publish the task (QueuedBy is
    set). If another live run holds the record, the run waits for that
    execution instead; if a usable value is there, nothing runs.
  - claim: an execution marks the record running before the asset runs,
    with a lease (LeaseUntil) its executor renews every third of the
    lease, and an Attempt number one higher than the last claim of the
    run. A second delivery of the task waits while the lease is live and
    takes a lapsed one over; a task whose record another run has queued
    since it was queued is stale and does not run.
  - renew, scatter progress: writes of the running attempt, only while the
    record is still its claim. An execution that finds another claim has
    been taken over: its context is cancelled as superseded and it
    records nothing. One that cannot renew before its lease ends cancels
    itself and hands the task back.
  - finish: the outcome, written over the attempt's own claim. Over
    anything else it is written only where it destroys nothing newer: over
    no record (invalidated meanwhile), or a completed value over a failure
    of the same run. Otherwise the attempt is stale and its result object
    is deleted.
  - open gate: the run's step reaches its asset's gate: the record waits
    for this run, with the gate (kind, message, opening, deadline). A
    record another live run holds, or whose gate waits or was passed
    and not yet queued, is left alone: this run waits for that one.
  - approve, reject, signal, expire: the decision of a waiting gate, for
    whichever run waits there (signal: only the run and the opening its
    token names; expire: only past the deadline; approve, reject and
    signal: only before it). A decided gate stays in the record, with its
    decision, until the asset has run: queue and claim carry it over, so
    that a signal's payload reaches the execution.
  - give up (a fleet task out of deliveries), fail (a step whose
    dependency failed or whose run ended before it started): failed or
    cancelled for that run, never over another run's record or a completed
    one; the value is kept.
  - skip: the run skipped the asset (a router chose another branch, see
    [Route]): skipped for that run, with the [Skip] and the last good value
    kept; never over a running record or one another run holds, and a run
    resumed after a crash that skips it again writes nothing.
  - seed and invalidate: replace or delete whatever is there.

# The fleet

An [Engine] decides what to run; its dispatcher runs it. Embedded, the
dispatcher is the engine's own executor and the stores are in memory. On
the fleet, package coordinator runs the same engine as a NATS service that
plans runs from the manifests workers publish (a pipeline's shape) and
publishes tasks on a JetStream work queue; package worker pulls them and
runs the same executor, with results in S3, a JetStream object store or
files and records in JetStream KV. Package client speaks the same verbs to
the fleet, with pipelines named instead of passed, and returns the same
[*Result] and [*Error] values; a client is also an [AsyncRunner], which
is what makes [Async] work on an engine.
*/
package flowstone
