package coordinator

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/bridge"
	"github.com/flowstone-go/flowstone/kv"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/rs/zerolog"
)

// registry keeps the pipelines the workers host, rebuilt from their
// manifests as those change.
type registry struct {
	store kv.Store
	log   zerolog.Logger

	mu        sync.RWMutex
	pipelines map[string]*hosted
}

type hosted struct {
	p        *flowstone.Pipeline
	manifest []byte              // the manifest p was built from, to skip rebuilds
	workers  map[string]string   // worker id -> manifest key
	storages map[string][]string // worker id -> the stores it told (sorted; nil: not told)
}

func newRegistry(store kv.Store, log zerolog.Logger) *registry {
	return &registry{store: store, log: log, pipelines: map[string]*hosted{}}
}

// start loads the current manifests, then follows changes until ctx ends.
func (r *registry) start(ctx context.Context, wg *sync.WaitGroup) error {
	ch, err := r.store.Watch(ctx, "")
	if err != nil {
		return err
	}
	for e := range ch {
		if e.Key == "" {
			break // initial values done
		}
		r.apply(e)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for e := range ch {
			if e.Key != "" {
				r.apply(e)
			}
		}
	}()
	return nil
}

func (r *registry) apply(e kv.Entry) {
	pipeline, worker, ok := strings.Cut(e.Key, ".")
	if !ok {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.pipelines[pipeline]
	if e.Value == nil {
		if h != nil {
			delete(h.workers, worker)
			delete(h.storages, worker)
		}
		return
	}
	m, perr := protocol.DecodeManifest(e.Value)
	if perr != nil {
		r.log.Warn().Str("key", e.Key).Str("error", perr.Message).Msg("manifest_rejected")
		return
	}
	if h == nil {
		h = &hosted{workers: map[string]string{}, storages: map[string][]string{}}
		r.pipelines[pipeline] = h
	}
	h.workers[worker] = e.Key
	h.storages[worker] = m.Storages
	// Rebuild only when the shape changed (UpdatedAt changes every refresh).
	m.UpdatedAt, m.Worker = m.UpdatedAt.Truncate(0), ""
	shape := fmt.Sprint(m.Assets, m.Schedules, m.Sensors)
	if h.p != nil && string(h.manifest) == shape {
		return
	}
	p, err := bridge.PipelineFromManifest(m)
	if err != nil {
		r.log.Warn().Str("pipeline", pipeline).Err(err).Msg("manifest_invalid")
		return
	}
	h.p, h.manifest = p, []byte(shape)
	r.log.Info().Str("pipeline", pipeline).Str("worker", worker).Int("assets", len(m.Assets)).Msg("pipeline_registered")
}

// checkStorage refuses a storage name that a worker hosting the pipeline
// has no store for: its tasks may go to any of them. Workers that did not
// tell their stores are not counted against it.
func (r *registry) checkStorage(pipeline, name string) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	h := r.pipelines[pipeline]
	if h == nil {
		return nil // the run fails on the pipeline lookup
	}
	var without []string
	var offered []string // stores every worker that told has
	told := 0
	for worker, names := range h.storages {
		if names == nil {
			continue
		}
		if told == 0 {
			offered = slices.Clone(names)
		} else {
			offered = slices.DeleteFunc(offered, func(n string) bool { return !slices.Contains(names, n) })
		}
		told++
		if !slices.Contains(names, name) {
			without = append(without, worker)
		}
	}
	if len(without) == 0 {
		return nil
	}
	slices.Sort(without)
	return &flowstone.Error{Type: flowstone.TypeConfigError,
		Details: map[string]any{"storage": name, "pipeline": pipeline, "workers_without": without, "available": offered},
		Message: fmt.Sprintf("storage %q is not configured on worker(s) %s of pipeline %s, and its tasks may run on any of them; stores every worker has: %v",
			name, strings.Join(without, ", "), pipeline, offered)}
}

// get returns the pipeline, or a PipelineNotFound error listing the known
// ones.
func (r *registry) get(name string) (*flowstone.Pipeline, *protocol.Error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if h := r.pipelines[name]; h != nil && h.p != nil {
		return h.p, nil
	}
	known := r.namesLocked()
	return nil, &protocol.Error{Code: protocol.CodePipelineNotFound,
		Message: fmt.Sprintf("pipeline %q is not hosted by any worker. Known: [%s]; start a worker that hosts it", name, strings.Join(known, " ")),
		Details: map[string]any{"pipeline": name, "available": known}}
}

func (r *registry) namesLocked() []string {
	out := make([]string, 0, len(r.pipelines))
	for n, h := range r.pipelines {
		if h.p != nil {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// summaries lists the pipelines with their asset and live worker counts.
func (r *registry) summaries(ctx context.Context) []protocol.PipelineSummary {
	r.mu.RLock()
	names := r.namesLocked()
	out := make([]protocol.PipelineSummary, 0, len(names))
	for _, n := range names {
		out = append(out, protocol.PipelineSummary{Name: n, Assets: len(r.pipelines[n].p.Assets())})
	}
	r.mu.RUnlock()
	// Manifests expire when a worker stops refreshing them: count the live
	// keys rather than trusting the watch.
	for i := range out {
		keys, err := r.store.Keys(ctx, out[i].Name+".")
		if err == nil {
			out[i].Workers = len(slices.Compact(keys))
		}
	}
	return out
}

// all returns the registered pipelines, by name.
func (r *registry) all() []*flowstone.Pipeline {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := r.namesLocked()
	out := make([]*flowstone.Pipeline, len(names))
	for i, n := range names {
		out[i] = r.pipelines[n].p
	}
	return out
}
