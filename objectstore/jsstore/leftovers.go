package jsstore

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

const (
	// maxLeftovers bounds the versions a Store remembers to purge; past
	// it the oldest are forgotten and their chunks stay unreachable.
	maxLeftovers = 1024
	// sweepBatch is how many leftovers a successful Put purges at most.
	sweepBatch = 16
)

// leftovers are the versions whose chunks a failed Put could not purge,
// because the server did not answer or because it could not tell whether
// the version's commit landed. A later successful Put purges those that
// are not current.
type leftovers struct {
	mu   sync.Mutex
	list []leftover
}

type leftover struct{ key, nuid string }

func (l *leftovers) add(key, nuid string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	lo := leftover{key, nuid}
	if slices.Contains(l.list, lo) {
		return
	}
	if len(l.list) == maxLeftovers {
		l.list = slices.Delete(l.list, 0, 1)
	}
	l.list = append(l.list, lo)
}

func (l *leftovers) take(n int) []leftover {
	l.mu.Lock()
	defer l.mu.Unlock()
	n = min(n, len(l.list))
	taken := slices.Clone(l.list[:n])
	l.list = slices.Delete(l.list, 0, n)
	return taken
}

// sweepLeftovers purges the chunks of a few leftover versions that are
// not their key's current one. It stops at the first error: the server is
// still unwell, and the rest waits for the next Put.
func (s *Store) sweepLeftovers(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	taken := s.leftovers.take(sweepBatch)
	for i, lo := range taken {
		cur, err := s.info(ctx, lo.key)
		switch {
		case err == nil && cur.NUID == lo.nuid && !cur.Deleted:
			continue // its commit landed after all: the object is whole
		case err != nil && !errors.Is(err, jetstream.ErrObjectNotFound):
			for _, rest := range taken[i:] {
				s.leftovers.add(rest.key, rest.nuid)
			}
			return
		}
		s.purgeChunks(ctx, lo.key, lo.nuid)
	}
}
