// Package worker is the FlowStone fleet's task consumer: it hosts pipelines,
// pulls their materialization tasks from JetStream, runs each with the same
// executor the embedded engine uses, and reports how it ended.
//
//	w, err := worker.New(worker.Config{
//		Conn:      nc,
//		Pipelines: pipelines.All(pipelines.Options{}),
//		Stores:    map[string]objectstore.Store{"file": fs},
//	})
//	...
//	err = w.Start(ctx)
//	...
//	err = w.Stop(shutdownCtx) // drains
//
// Workers are stateless: start or kill any number. Everything they know is
// in JetStream, and a worker killed at any instant loses nothing.
//
// # Tasks
//
// Each hosted pipeline has one durable pull consumer per priority (0..3,
// fleet.TaskConsumer), shared by every worker that hosts it. A message is
// one task or, under load, a protocol.TaskBatch of several tasks of one
// pipeline and priority (the coordinator batches what it publishes while a
// publish is in flight). Every task takes a slot (Config.Concurrency)
// before it starts, waiting in line if need be, so a worker never runs
// more tasks at once than its concurrency, batches or not. A task gives its
// slot back once the executor is done (result and record stored); its
// completion is then published without holding one. The worker
// fetches only when a slot would be left over once every fetched task has
// one, asking for about that many tasks (the number of messages is scaled
// by the tasks a message has been bringing), from priority 3 down to 0; so
// at most one fetch's worth of tasks waits in a worker, its message kept
// alive by the heartbeats, and a worker that begins to stop hands back the
// tasks still waiting at once. Under a saturated queue higher priorities
// are served first: a worker fetches priority 3 down to 0, and a task
// published at a higher priority waits at most for the few tasks already
// waiting in a worker (the surplus of the last fetch) to start. A worker
// asks only consumers that may have tasks: one it found empty is asked
// again when its bell rings (protocol.BellSubject: a core NATS message the
// coordinator publishes once a task message is stored, which every worker
// hosting the pipeline is subscribed to) or after Config.IdlePoll, for
// tasks that come back without a bell (redeliveries, a lost bell). So an
// idle worker does not poll JetStream, and a busy one hosting many
// pipelines does not ask every consumer of every priority for each batch.
// A higher-priority task reaches a busy worker through its bell; were the
// bell lost, through the idle poll.
//
// # Execution and acknowledgement
//
// A task becomes an executor's task (its attempt is the message's delivery
// count) and runs under a context bounded by the task's timeout and its
// run's deadline. While it runs the worker sends an in-progress heartbeat
// every AckWait/3, so JetStream redelivers it only if the worker dies. When
// the executor returns, the materialization record is in KV (the executor
// writes it before returning, success or failure); the worker then publishes
// a protocol.Completion to protocol.DoneSubject (alone, with the dedupe id
// "<task id>.<attempt>", or joined with other completions of the pipeline
// in a protocol.CompletionBatch while a publish is in flight), and acks the
// message once JetStream has stored the completion of every task in it. A
// crash before the ack redelivers the whole message; the executor sees the
// records of the tasks that had ended completed by the same run and does
// not execute them again, and their completions are published again
// (coordinators handle completions idempotently). If a task of a batch is
// handed back or its completion cannot be stored, the message is nak'ed
// once the others have ended. A message that is not a valid task or batch
// is terminated (never redelivered) and logged.
//
// # Cancellation
//
// Workers subscribe to protocol.CancelSubjects. A cancel cancels the
// context of the run's running tasks (the executor records them cancelled
// and the completion carries the code "cancelled"), and for CancelMemory the
// run's later tasks are completed as cancelled without executing.
//
// # Scatter items
//
// A scatter asset's items run across the fleet (see flowstone.Scatter).
// The worker executing the asset's task drives it: it hands the items out
// in batches (protocol.ItemBatch) on protocol.ItemSubject(pipeline), in the
// task stream, and follows their outcomes by watching the scatter's keys
// in protocol.ScatterBucket. Every worker hosting the pipeline takes
// batches through a durable consumer of its own (fleet.ItemConsumer), up
// to Config.ScatterBatches per pipeline beside its tasks, so that a
// scatter never waits for a slot its own task holds; it runs each batch
// with the shared executor, records the batch's outcome once (a
// create-only write: a second delivery's outcome is dropped) and acks the
// batch. A batch delivered more than fleet.MaxDeliverDefault times is
// recorded failed instead of run again. When the driver's worker dies, the
// task's next delivery finds the batches recorded and hands out the rest;
// it drops the scatter's keys once the asset's outcome is recorded.
//
// # Stopping
//
// Stop stops taking tasks and waits for the running ones. If its context
// ends first, it cancels them with a cause that hands them back (the
// executor then records them pending, not cancelled: they are not over) and
// naks their messages so that another worker takes them at once. It deletes
// the worker's manifests and closes the stores it opened, and returns once
// every goroutine the worker started has returned, but for those of tasks
// whose assets ignore their cancelled context for HardStopWait (handed
// back, and named in the error). A Start that fails leaves nothing running
// and no manifest behind.
//
// # Manifests and events
//
// The worker puts the manifest of each hosted pipeline in the manifests
// bucket at Start and every fleet.ManifestRefresh (the bucket's TTL removes
// the manifests of a dead worker), and publishes every executor event on
// protocol.EventSubject unless Config.NoEvents is set. Events are published
// in batches (protocol.EventBatch), one per pipeline and kind: a batch goes
// out when it holds protocol.MaxEventBatch events or 256 KiB, and at the
// latest 10ms after its first event, so a materialization's four events
// cost the server far fewer than four messages. Batches of different kinds
// do not keep the order events happened in, so each event is numbered
// (metadata "seq") and each message says its process and the lowest number
// not yet sent (protocol.EventEpochHeader, protocol.EventFloorHeader):
// client.Watch puts them back in order. Stop publishes whatever is
// buffered; the events buffered when a worker process dies are lost, which
// for telemetry is acceptable (records and completions are never lost:
// a batch of completions is stored before any of its tasks is acked).
//
// # Metrics
//
// With Config.Registerer set the worker registers:
//
//   - flowstone_worker_tasks_started_total{pipeline,asset}
//   - flowstone_worker_tasks_succeeded_total{pipeline,asset}
//   - flowstone_worker_tasks_failed_total{pipeline,asset,code}
//   - flowstone_worker_task_duration_seconds{pipeline,asset,outcome}
//   - flowstone_worker_tasks_redelivered_total{pipeline}: tasks of a message
//     delivered before (a worker died, stopped or lost its connection)
//   - flowstone_worker_scatter_items_total{pipeline,asset,state}
//   - flowstone_worker_queue_depth{pipeline,priority}, as of the last fetch
//
// The pipeline and asset labels take the hosted pipelines' names only: a
// worker's series are bounded by the assets it hosts (every one exists
// from Start, at zero), and error codes are the protocol's few.
//
// # Permissions
//
// The worker role of deploy/nats.conf is what a worker needs, and
// internal/security runs a worker on it. Start looks up the fleet's
// streams, buckets and consumers and creates those missing (fleet.Ensure),
// which needs stream info and create on the fleet's streams by name.
// Running, a worker needs what a JetStream consumer of FLOWSTONE_TASKS
// needs (consumer create, info and next-message requests, acks, a private
// inbox), publishes to flowstone.done.>, flowstone.event.> and
// flowstone.task.<pipeline>.items (scatter batches), writes the KV
// subjects of the records, manifests and scatter buckets and the results
// object store (reading them with message and direct gets and ordered
// consumers), and subscribes to flowstone.cancel.*,
// flowstone.bell.<pipeline>.* (the idle wake-up) and, for a pipeline with
// sensors, flowstone.sensor.<pipeline> (queue group flowstone_sensors),
// answering on the requester's inbox. It calls no API verb.
//
// # Sensors
//
// A pipeline's sensors (flowstone.Sensor) are its Go code, so the
// coordinator that claims a sensor's interval asks a worker hosting the
// pipeline to evaluate it, on protocol.SensorSubject: one of the workers
// hosting it runs the function (bounded by its timeout, a panic made an
// error, the result checked against the pipeline) and answers the runs and
// the cursor; the coordinator keeps the cursor and starts the runs. A
// worker that stops finishes the evaluation under way (cancelled) and
// takes no more.
package worker
