package coordinator

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/bridge"
	"github.com/flowstone-go/flowstone/kv"
	"github.com/flowstone-go/flowstone/protocol"
)

// The scheduled-run index: under schedKey(target), in the runs bucket, the
// runs of a target (an asset's partition) scheduled for later, so that
// status finds them with one read whichever coordinator accepted them.
// An entry is added before its schedule is published and removed when the
// run starts or is cancelled; one left behind by a coordinator that died
// in between is stale, and whoever reads it checks the run's record (and
// drops the entry) before reporting it.

// schedEntry is one scheduled run in the index.
type schedEntry struct {
	RunID string    `json:"run_id"`
	At    time.Time `json:"at"`
}

// schedTarget names an asset's partition in the index: its
// materialization key without "mat.".
func schedTarget(pipeline, asset, partition string) string {
	return strings.TrimPrefix(bridge.MaterializationKey(pipeline, asset, cmp.Or(partition, flowstone.DefaultPartition)), "mat.")
}

func schedKey(target string) string { return "sched." + target }

// indexSchedule adds add (if not nil) to target's entries and removes the
// entry of run remove (if not ""), by compare-and-set.
func (c *Coordinator) indexSchedule(ctx context.Context, target string, add *schedEntry, remove string) error {
	key := schedKey(target)
	for {
		var (
			entries []schedEntry
			rev     uint64
		)
		e, err := c.runs.Get(ctx, key)
		switch {
		case errors.Is(err, kv.ErrNotFound):
		case err != nil:
			return err
		default:
			rev = e.Revision
			if json.Unmarshal(e.Value, &entries) != nil {
				entries = nil // unreadable: start it over
			}
		}
		next := slices.DeleteFunc(entries, func(s schedEntry) bool {
			return s.RunID == remove || add != nil && s.RunID == add.RunID
		})
		if add != nil {
			next = append(next, *add)
		}
		switch {
		case len(next) == 0 && rev == 0:
			return nil
		case len(next) == 0:
			err = c.runs.Delete(ctx, key, rev)
		default:
			b, merr := json.Marshal(next)
			if merr != nil {
				return merr
			}
			if rev == 0 {
				_, err = c.runs.Create(ctx, key, b)
			} else {
				_, err = c.runs.Update(ctx, key, b, rev)
			}
		}
		if !errors.Is(err, kv.ErrConflict) {
			return err
		}
	}
}

// unindexSchedule removes run runID of req's target from the index, best
// effort: an entry left behind is found stale by the next reader.
func (c *Coordinator) unindexSchedule(ctx context.Context, req protocol.RunRequest, runID string) {
	if err := c.indexSchedule(ctx, schedTarget(req.Pipeline, req.Asset, req.Partition), nil, runID); err != nil && ctx.Err() == nil {
		c.log.Warn().Err(err).Str("run_id", runID).Msg("schedule_unindex_failed")
	}
}

// nextScheduled returns the earliest run of target still scheduled, or
// nil; entries whose run is no longer scheduled are dropped.
func (c *Coordinator) nextScheduled(ctx context.Context, target string) (*schedEntry, error) {
	e, err := c.runs.Get(ctx, schedKey(target))
	if errors.Is(err, kv.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var entries []schedEntry
	if json.Unmarshal(e.Value, &entries) != nil {
		return nil, nil
	}
	slices.SortFunc(entries, func(a, b schedEntry) int { return a.At.Compare(b.At) })
	for _, s := range entries {
		rec, _, err := c.loadRun(ctx, s.RunID)
		switch {
		case err == nil && rec.State == protocol.StateScheduled:
			return &s, nil
		case err == nil, errors.Is(err, kv.ErrNotFound):
			// Started, cancelled or gone: its coordinator did not
			// get to remove it.
			if err := c.indexSchedule(ctx, target, nil, s.RunID); err != nil {
				return nil, err
			}
		default:
			return nil, err
		}
	}
	return nil, nil
}
