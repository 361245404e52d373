// Package fleetbench holds the fleet's end-to-end benchmarks: a raw
// JetStream work queue as the baseline, no-op materializations through a
// coordinator and two workers, and the latency of client runs. Each
// benchmark starts its own embedded nats-server with JetStream on file
// storage in a temporary directory, so the figures are comparable within
// one `go test -bench` invocation. The package has no non-test code; see
// BENCHMARKS.md at the repository root for the commands and the figures.
package fleetbench
