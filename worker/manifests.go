package worker

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/flowstone-go/flowstone/internal/bridge"
	"github.com/flowstone-go/flowstone/internal/fleet"
	"github.com/flowstone-go/flowstone/protocol"
)

// putManifests writes the manifest of every hosted pipeline under
// protocol.ManifestKey. The bucket expires a manifest fleet.ManifestTTL
// after its last write, so a worker that dies leaves the fleet by itself.
func (w *Worker) putManifests(ctx context.Context) error {
	for _, h := range w.hosted {
		m := bridge.Manifest(h.p, w.cfg.ID)
		m.Storages = w.toldStorages()
		body, perr := protocol.EncodeManifest(m)
		if perr != nil {
			return fmt.Errorf("worker: manifest of pipeline %s: %w", h.name, perr)
		}
		if _, err := w.manifests.Put(ctx, protocol.ManifestKey(h.name, w.cfg.ID), body); err != nil {
			return fmt.Errorf("worker: put manifest of pipeline %s: %w", h.name, err)
		}
	}
	return nil
}

// refreshManifests rewrites the manifests every fleet.ManifestRefresh.
func (w *Worker) refreshManifests(ctx context.Context) {
	defer w.background.Done()
	t := time.NewTicker(fleet.ManifestRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		put, cancel := context.WithTimeout(ctx, fleet.ManifestRefresh)
		if err := w.putManifests(put); err != nil && ctx.Err() == nil {
			w.log.Warn().Err(err).Msg("manifest_refresh_failed")
		}
		cancel()
	}
}

// deleteManifests removes the worker's manifests: it hosts nothing now.
func (w *Worker) deleteManifests(ctx context.Context) {
	for _, h := range w.hosted {
		if err := w.manifests.Delete(ctx, protocol.ManifestKey(h.name, w.cfg.ID), 0); err != nil {
			w.log.Warn().Err(err).Str("pipeline", h.name).Msg("manifest_delete_failed")
		}
	}
}

// toldStorages lists the worker's stores for its manifests: those whose
// names a run can ask for (protocol.ValidName). More than
// protocol.MaxStorages are not told at all, so that no coordinator refuses
// a store left off a cut list.
func (w *Worker) toldStorages() []string {
	names := slices.DeleteFunc(storeNames(w.cfg.Stores), func(n string) bool { return protocol.ValidName(n) != nil })
	if len(names) > protocol.MaxStorages {
		return nil
	}
	return names
}
