// Package faults is FlowStone's fault harness: it runs the fleet as real
// processes on loopback (nats-server with JetStream on a file store, two
// coordinators, three workers, a versitygw S3 server), drives a backfill of
// daily_sales revenue with the fsctl binary, injects one fault per scenario
// at seeded random instants, and then checks what a user would: every
// partition completed, nothing left pending or running, every stored object
// present with its checksum, no asset executed to completion twice in one
// run unless a kill preceded its first record, and values equal to an
// undisturbed run.
//
// # Running it
//
// The tests are behind the build tag "faults", so go test ./... skips them.
// The short variants (150 partitions, fewer fault repetitions) are for CI:
//
//	go test -tags faults -run Short -v ./internal/faults
//
// The long variants (1,000 partitions) take minutes per scenario:
//
//	go test -tags faults -run Long -v -timeout 90m ./internal/faults
//
// One scenario: -run 'Long/nats_restart' (the undisturbed baseline runs
// first, as every scenario compares with it). Test flags, given after the
// package: -faults.seed N picks other random instants (the seed is printed),
// -faults.partitions N overrides the size, -faults.stall D how long the
// harness waits without any progress before it checks, -faults.logs DIR keeps
// every process's log there. RELIABILITY.md at the repository root lists the
// scenarios and what they measured.
//
// The tests build cmd/coordinator, cmd/worker, cmd/fsctl and nats-server
// from the module; the S3 server is versitygw (FLOWSTONE_VERSITYGW, see
// internal/s3test).
package faults
