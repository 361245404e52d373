package flowstone

import (
	"math"
	"time"
	"unicode/utf8"
)

// ScatterFunc lists the items a scatter asset fans out over. It runs once
// per materialization, with the asset's dependencies available through Dep.
// On a fleet, a materialization whose worker died lists its items again:
// a list that comes out the same finds the items already recorded.
type ScatterFunc func(c *Context) ([]string, error)

// ScatterConfig tunes a scatter asset.
type ScatterConfig struct {
	// Parallel is how many items run at once: in this process when
	// embedded, across every worker on a fleet. Defaults to
	// ScatterParallelDefault.
	Parallel int
	// BatchSize is how many items go out together: on a fleet, one task
	// message and one recorded outcome carry them, and one worker runs
	// them side by side. Defaults to a quarter of Parallel (so that at
	// least four batches share the fleet), at most MaxScatterBatch; with
	// a Rate, at most a tenth of the Rate.
	BatchSize int
	// Rate, when above 0, is how many items may start per second, across
	// the fleet: batches go out as the rate allows, and a batch spreads its
	// items' starts over its share of the second.
	Rate float64
	// ItemRetries is how many more times a failed item runs before it
	// counts as failed. A timeout or a cancel is not retried. Defaults to 0.
	ItemRetries int
	// ItemBackoff is the wait before an item's first retry; each retry
	// doubles it, up to ItemMaxBackoff, and each wait is jittered (between
	// half and all of it). Default to 100 ms and 10 s.
	ItemBackoff    time.Duration
	ItemMaxBackoff time.Duration
	// Batching, when set, makes the function run once per batch of items
	// (Context.ScatterBatch tells which) instead of once per item.
	Batching *Batching
	// MaxFailures is how many items may fail before the asset fails with a
	// ScatterThreshold error. Defaults to 0: any failed item fails the asset.
	MaxFailures int
	// MaxFailureRate, from 0 to 1, allows that fraction of the items to
	// fail (rounded down): 0.02 lets 200 of 10,000 fail. The larger of
	// the two allowances applies. Defaults to 0.
	MaxFailureRate float64
}

// Batching groups a scatter's items into batches that its function handles
// one call each: a bulk insert, a batch API. The asset's value is then a
// JSON array of the batches' values, in batch order (null for a failed
// batch); a batch's outcome is its items' (a failed batch fails each of
// its items, for the counts, the threshold and FailedItems). Items keep
// their listed order within a group; with GroupBy, the groups come in the
// order their first items were listed.
type Batching struct {
	// MaxItems is the most items in one batch. Defaults to and is at most
	// MaxScatterBatch.
	MaxItems int
	// MaxBytes, when above 0, is the most bytes of items in one batch, as
	// Size counts them; an item larger on its own makes a batch of one.
	MaxBytes int
	// Size is an item's bytes. Defaults to the length of its key.
	Size func(item string) int
	// GroupBy, when set, keeps apart the items of different keys: a batch
	// holds items of one key.
	GroupBy func(item string) string
}

// ScatterBatch is the batch a batched scatter's function call handles
// (see Batching).
type ScatterBatch struct {
	// Items are the batch's items, in order.
	Items []string
	// Index is the batch's place among the scatter's, from 0; Count is
	// how many batches the scatter has.
	Index, Count int
}

// Defaults and limits of ScatterConfig.
const (
	// ScatterParallelDefault is ScatterConfig.Parallel's default.
	ScatterParallelDefault = 16
	// MaxScatterBatch is the most items in one batch.
	MaxScatterBatch = 256
	// ItemBackoffDefault and ItemMaxBackoffDefault are the defaults of
	// ScatterConfig.ItemBackoff and ItemMaxBackoff.
	ItemBackoffDefault    = 100 * time.Millisecond
	ItemMaxBackoffDefault = 10 * time.Second
)

// allowedFailures is how many of total items may fail.
func (c ScatterConfig) allowedFailures(total int) int {
	return max(c.MaxFailures, int(math.Floor(c.MaxFailureRate*float64(total))))
}

// batchSize is how many items each batch holds.
func (c ScatterConfig) batchSize() int {
	n := c.BatchSize
	if n <= 0 {
		n = (c.Parallel + 3) / 4
	}
	n = min(n, c.Parallel, MaxScatterBatch)
	if c.Rate > 0 {
		n = min(n, int(c.Rate/10))
	}
	return max(n, 1)
}

// batchesInOrder is batches without grouping: a reader's items batch in
// the order read.
func (c ScatterConfig) batchesInOrder(items []string) ([]string, []int) {
	if c.Batching != nil && c.Batching.GroupBy != nil {
		b := *c.Batching
		b.GroupBy = nil
		c.Batching = &b
	}
	return c.batches(items)
}

// batches orders the items by batch and returns where each batch starts
// (and, last, where the list ends).
func (c ScatterConfig) batches(items []string) ([]string, []int) {
	if c.Batching == nil {
		size := c.batchSize()
		bounds := make([]int, 0, len(items)/size+2)
		for i := 0; i < len(items); i += size {
			bounds = append(bounds, i)
		}
		return items, append(bounds, len(items))
	}
	b := c.Batching
	maxItems := min(max(b.MaxItems, 0), MaxScatterBatch)
	if maxItems == 0 {
		maxItems = MaxScatterBatch
	}
	size := b.Size
	if size == nil {
		size = func(s string) int { return len(s) }
	}
	ordered := items
	if b.GroupBy != nil {
		var keys []string
		groups := map[string][]string{}
		for _, it := range items {
			k := b.GroupBy(it)
			if _, ok := groups[k]; !ok {
				keys = append(keys, k)
			}
			groups[k] = append(groups[k], it)
		}
		ordered = make([]string, 0, len(items))
		var bounds []int
		for _, k := range keys {
			start := len(ordered)
			ordered = append(ordered, groups[k]...)
			bounds = append(bounds, cut(ordered[start:], start, maxItems, b.MaxBytes, size)...)
		}
		return ordered, append(bounds, len(ordered))
	}
	return ordered, append(cut(ordered, 0, maxItems, b.MaxBytes, size), len(ordered))
}

// cut splits items (at offset in the whole list) into batches of at most
// maxItems and maxBytes (when above 0), and returns where each begins.
func cut(items []string, offset, maxItems, maxBytes int, size func(string) int) []int {
	var bounds []int
	n, bytes := 0, 0
	for i, it := range items {
		s := size(it)
		if i == 0 || n == maxItems || maxBytes > 0 && bytes+s > maxBytes {
			bounds = append(bounds, offset+i)
			n, bytes = 0, 0
		}
		n++
		bytes += s
	}
	return bounds
}

// Limits of a scatter's item list (see Scatter).
const (
	// MaxScatterItems is the most items one materialization of a scatter
	// asset fans out over.
	MaxScatterItems = 1_000_000
	// MaxScatterItemLen is the longest item key, in bytes.
	MaxScatterItemLen = 1024
	// MaxListedFailures is how many failed items ScatterStatus.FailedItems
	// lists, the first ones in item order.
	MaxListedFailures = 100
)

// scatterItems checks the keys list returned and drops repeated ones,
// keeping the first of each in order: an item runs once, and counts once.
// Too many items, or an empty, overlong or non-UTF-8 key, fail the asset
// with an ExecutionFailed error that says which.
func scatterItems(asset string, list []string) ([]string, error) {
	if len(list) > MaxScatterItems {
		return nil, newError(TypeExecutionFailed, map[string]any{"asset": asset, "items": len(list), "limit": MaxScatterItems},
			"scatter asset %q listed %d items; at most %d may run in one materialization: split the asset or its partitions", asset, len(list), MaxScatterItems)
	}
	seen := make(map[string]struct{}, len(list))
	out := list[:0:0]
	for i, it := range list {
		if it == "" || len(it) > MaxScatterItemLen || !utf8.ValidString(it) {
			return nil, newError(TypeExecutionFailed, map[string]any{"asset": asset, "index": i, "bytes": len(it), "limit": MaxScatterItemLen},
				"scatter asset %q listed an item (#%d, %d bytes) that is empty, longer than %d bytes or not UTF-8", asset, i, len(it), MaxScatterItemLen)
		}
		if _, dup := seen[it]; dup {
			continue
		}
		seen[it] = struct{}{}
		out = append(out, it)
	}
	return out, nil
}

type scatterSpec struct {
	fn     ScatterFunc
	reader func(c *Context) (ItemReader, error) // ScatterFrom's, instead of fn
	cfg    ScatterConfig
}

// Scatter makes the asset fan out: list returns the items, and the asset's
// function runs once per item (Context.ScatterItem tells which), or once
// per batch of them with cfg.Batching (Context.ScatterBatch), up to
// cfg.Parallel at a time; a key listed twice runs once. The asset's value
// is a JSON object from item to that item's value; failed items are left
// out, and listed in the status (ScatterStatus.FailedItems). At most
// MaxScatterItems items, each a non-empty UTF-8 key of up to
// MaxScatterItemLen bytes. Status reports the counts while it runs, and
// the scatter telemetry events mark each item.
//
// Embedded, the items run in the calling process. On a fleet they go out
// in batches (cfg.BatchSize) to every worker that hosts the pipeline, and
// each batch's outcome is recorded once it ends: a worker that dies loses
// only the batches it was running, which run again elsewhere, and a
// materialization whose worker died resumes with the batches recorded.
func Scatter(list ScatterFunc, cfg ScatterConfig) AssetOption {
	if cfg.Parallel < 1 {
		cfg.Parallel = ScatterParallelDefault
	}
	cfg.MaxFailureRate = min(max(cfg.MaxFailureRate, 0), 1)
	cfg.ItemRetries = max(cfg.ItemRetries, 0)
	if cfg.ItemBackoff <= 0 {
		cfg.ItemBackoff = ItemBackoffDefault
	}
	if cfg.ItemMaxBackoff <= 0 {
		cfg.ItemMaxBackoff = ItemMaxBackoffDefault
	}
	cfg.ItemMaxBackoff = max(cfg.ItemMaxBackoff, cfg.ItemBackoff)
	return assetOptionFunc(func(a *AssetDef) { a.scatter = &scatterSpec{fn: list, cfg: cfg} })
}

// ScatterStatus counts a scatter asset's items: Completed + Failed +
// Cancelled + Pending is Total. Items stopped by the end of the asset's
// run (a cancel, a timeout) are Cancelled, not Failed, and so are those it
// never started: a finished record has no Pending items.
type ScatterStatus struct {
	Total     int `json:"total"`
	Completed int `json:"completed"`
	Failed    int `json:"failed"`
	Cancelled int `json:"cancelled"`
	Pending   int `json:"pending"`
	// FailedItems lists the first MaxListedFailures failed items, in
	// item order, once the asset has ended.
	FailedItems []ScatterFailure `json:"failed_items,omitempty"`
}

// ScatterFailure is a failed item of a scatter and why it failed.
type ScatterFailure struct {
	Item  string `json:"item"`
	Error *Error `json:"error"`
}
