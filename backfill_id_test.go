package flowstone_test

import (
	"strings"
	"testing"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/protocol"
)

// A named backfill runs each partition under the run id derived from its
// name, the same one a second driver of the backfill would use; a bad
// name is refused before anything runs.
func TestBackfillIDNamesThePartitionRuns(t *testing.T) {
	e := newEngine(t)
	execs := 0
	p := flowstone.MustPipeline("named", flowstone.Asset("a", func(c *flowstone.Context) (any, error) {
		execs++
		return c.Partition(), nil
	}, flowstone.PartitionedBy(flowstone.AnyKey)))
	ctx := ctxT(t)
	parts := []string{"x", "y", "z.>*"}
	stats, err := e.Backfill(ctx, p, "a", flowstone.Partitions(parts...), flowstone.BackfillID("bf-1"))
	if err != nil || stats.Succeeded != 3 || stats.ID != "bf-1" {
		t.Fatalf("stats = %+v, %v", stats, err)
	}
	for _, part := range parts {
		st, err := e.Status(ctx, p, "a", flowstone.Partition(part))
		if err != nil || st.RunID != protocol.BackfillRunID("bf-1", part) {
			t.Errorf("status of %q = %+v, %v; want run %s", part, st, err, protocol.BackfillRunID("bf-1", part))
		}
	}
	for _, id := range []string{"a.b", strings.Repeat("x", protocol.MaxBackfillIDBytes+1)} {
		_, err := e.Backfill(ctx, p, "a", flowstone.Partitions("w"), flowstone.BackfillID(id))
		wantType(t, err, flowstone.TypeBadRequest)
	}
	if execs != 3 {
		t.Errorf("%d executions, want 3", execs)
	}
}
