package flowstone

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/flowstone-go/flowstone/kv"
	"github.com/flowstone-go/flowstone/protocol"
)

// BackfillStats counts a Backfill's partitions.
type BackfillStats struct {
	// ID names the backfill: the fleet's id for it (follow it with the
	// client's FollowBackfill), or the one given with BackfillID; empty
	// otherwise.
	ID string `json:"id,omitempty"`
	// Succeeded: materialized by this backfill.
	Succeeded int `json:"succeeded"`
	// Failed: the run failed (see Errors).
	Failed int `json:"failed"`
	// Skipped: already materialized, so nothing ran.
	Skipped int `json:"skipped"`
	// NotStarted: left out because OnError(Halt) stopped the backfill (or
	// its context ended).
	NotStarted int `json:"not_started,omitempty"`
	// NotStartedPartitions names the partitions NotStarted counts, in the
	// order they were given: the first MaxListedNotStarted of them. On
	// the fleet the client reads them from the backfill's record; a client
	// that may not read it gets the count only.
	NotStartedPartitions []string `json:"not_started_partitions,omitempty"`
	// Errors holds each failed partition's error. On the fleet it holds
	// the first protocol.MaxBackfillErrors of them; Failed counts them all.
	Errors map[string]*Error `json:"errors,omitempty"`
}

type backfillIDOption string

func (o backfillIDOption) applyBackfill(c *backfillConfig) { c.id = string(o) }

// BackfillID names a backfill. The partitions then run under run ids
// derived from it (protocol.BackfillRunID: the id, a dash and a digest of
// the partition), the same each time: a backfill run again under the same
// id after its process died finds the records its partitions left pending
// and resumes them instead of starting them anew. The fleet's coordinators
// name every backfill so, and the one that adopts a backfill whose driver
// died runs it again under its id. The id is 1 to
// protocol.MaxBackfillIDBytes letters, digits, '_' or '-'.
func BackfillID(id string) BackfillOption { return backfillIDOption(id) }

// MaxListedNotStarted is the most partitions BackfillStats names in
// NotStartedPartitions: as many as the errors it keeps on the fleet
// (protocol.MaxBackfillErrors).
const MaxListedNotStarted = protocol.MaxBackfillErrors

// BackfillProgress is what OnProgress receives after each partition.
type BackfillProgress struct {
	Partition string
	Done      int
	Total     int
	Err       *Error
	Stats     BackfillStats
}

// Backfill runs asset over the partitions (Partitions, DateRange), up to
// Parallel at a time. A failed partition is counted, not returned:
// the error return is for bad arguments (an unknown asset, no partitions,
// a key the asset's partition scheme rejects), found before anything runs.
func (e *Engine) Backfill(ctx context.Context, p *Pipeline, asset string, opts ...BackfillOption) (BackfillStats, error) {
	cfg := backfillConfig{parallel: 1, withDeps: true, timeout: DefaultRunTimeout}
	for _, o := range opts {
		o.applyBackfill(&cfg)
	}
	if cfg.err != nil {
		return BackfillStats{}, cfg.err
	}
	if cfg.id != "" && (len(cfg.id) > protocol.MaxBackfillIDBytes || protocol.ValidID(cfg.id) != nil) {
		return BackfillStats{}, newError(TypeBadRequest, map[string]any{"backfill_id": cfg.id},
			"backfill id %q is not valid: use 1-%d letters, digits, '_' or '-'", cfg.id, protocol.MaxBackfillIDBytes)
	}
	target, err := p.lookup(asset)
	if err != nil {
		return BackfillStats{}, err
	}
	if len(cfg.partitions) == 0 {
		return BackfillStats{}, newError(TypeBadRequest, map[string]any{"asset": asset},
			"backfill of %q needs partitions: pass flowstone.Partitions(...) or flowstone.DateRange(from, to)", asset)
	}
	for _, key := range cfg.partitions {
		if err := e.checkPartitionFor(p, target, key); err != nil {
			return BackfillStats{}, err
		}
	}
	if err := e.checkGates(target, cfg.withDeps); err != nil && !cfg.async {
		return BackfillStats{}, err
	}
	if cfg.async && e.async == nil {
		// As Run does, up front: not a failure per partition.
		return BackfillStats{}, noFleet(p, asset, "Backfill")
	}
	var absent map[string]bool
	if !cfg.async {
		absent = e.absentPartitions(ctx, p, target, cfg.partitions)
	}
	run := func(key string) (*Result, error) {
		rc := runConfig{partition: key, force: cfg.force, withDeps: cfg.withDeps, timeout: cfg.timeout, priority: cfg.priority, async: cfg.async,
			absent: absent[key]}
		if cfg.id != "" {
			rc.runID = protocol.BackfillRunID(cfg.id, key)
		}
		if cfg.async {
			return e.enqueue(ctx, p, asset, rc)
		}
		return e.run(ctx, p, target, rc)
	}

	var (
		mu     sync.Mutex
		stats  = BackfillStats{ID: cfg.id}
		done   int
		halted bool
		wg     sync.WaitGroup
		sem    = make(chan struct{}, cfg.parallel)
	)
	for i, key := range cfg.partitions {
		sem <- struct{}{}
		mu.Lock()
		stop := halted || ctx.Err() != nil
		if stop {
			rest := cfg.partitions[i:]
			stats.NotStarted += len(rest)
			stats.NotStartedPartitions = slices.Clone(rest[:min(len(rest), MaxListedNotStarted)])
		}
		mu.Unlock()
		if stop {
			<-sem
			break
		}
		wg.Add(1)
		e.pool.Go(func() {
			defer wg.Done()
			defer func() { <-sem }()
			res, err := run(key)
			mu.Lock()
			defer mu.Unlock()
			var fe *Error
			switch {
			case err != nil:
				fe = AsError(err)
				stats.Failed++
				if stats.Errors == nil {
					stats.Errors = map[string]*Error{}
				}
				stats.Errors[key] = fe
				halted = halted || cfg.halt
			case res.Cached:
				stats.Skipped++
			default:
				stats.Succeeded++
			}
			done++
			if cfg.progress != nil {
				cfg.progress(BackfillProgress{Partition: key, Done: done, Total: len(cfg.partitions), Err: fe, Stats: stats})
			}
		})
	}
	wg.Wait()
	return stats, nil
}

// Planning a large backfill from one pass over the records it names.
const (
	// listMinPartitions is the smallest backfill worth a listing.
	listMinPartitions = 64
	// listBudgetPerPartition bounds the listing: past this much time per
	// partition (plus listBudgetBase) the listing is abandoned and every
	// partition's record is read on its own, so an asset with far more
	// records than the backfill names costs at most what it saves.
	listBudgetPerPartition = 10 * time.Microsecond
	listBudgetBase         = 20 * time.Millisecond
)

// absentPartitions returns the partitions of a large backfill whose target
// has no record now, so that planning them needs no read each: most
// partitions of a backfill were never materialized. With a store that can
// check many keys at once (kv.PresenceChecker) it asks about the named
// partitions only; otherwise it lists the asset's keys. Only absence is
// taken from it; a record found is read again when its partition runs, and
// one created after the check is caught by the execution's compare-and-set.
// It returns nil when the backfill is small or the check fails or takes
// too long.
func (e *Engine) absentPartitions(ctx context.Context, p *Pipeline, target *node, partitions []string) map[string]bool {
	if len(partitions) < listMinPartitions {
		return nil
	}
	budget := listBudgetBase + time.Duration(len(partitions))*listBudgetPerPartition
	lctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	if pc, ok := e.kv.(kv.PresenceChecker); ok {
		keys := make([]string, len(partitions))
		for i, part := range partitions {
			keys[i] = materializationKey(p.name, target.def.name, part)
		}
		present, err := pc.Present(lctx, keys)
		if err != nil {
			return nil
		}
		absent := make(map[string]bool, len(partitions))
		for i, part := range partitions {
			if !present[keys[i]] {
				absent[part] = true
			}
		}
		return absent
	}
	prefix := recordPrefix(p.name, target.def.name)
	keys, err := e.kv.Keys(lctx, prefix)
	if err != nil {
		return nil
	}
	present := make(map[string]struct{}, len(keys))
	for _, k := range keys {
		present[k] = struct{}{}
	}
	absent := make(map[string]bool, len(partitions))
	for _, part := range partitions {
		if _, ok := present[materializationKey(p.name, target.def.name, part)]; !ok {
			absent[part] = true
		}
	}
	return absent
}
