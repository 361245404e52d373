package readers

import (
	"slices"
	"strings"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/kv"
)

// Keys reads the keys under prefix of a key/value store, in lexical order:
// a JetStream KV bucket through kv/jskv, or any kv.Store. Its checkpoint
// is the last key read; keys written after the scatter began are read if
// they sort after it. Items are the keys with prefix removed (or the
// whole key when that leaves nothing).
func Keys(store kv.Store, prefix string) flowstone.ItemReader {
	return &keysReader{store: store, prefix: prefix}
}

type keysReader struct {
	store  kv.Store
	prefix string
	keys   []string // listed at Open, after the checkpoint
}

func (r *keysReader) Open(c *flowstone.Context, checkpoint string) error {
	keys, err := r.store.Keys(c.Context(), r.prefix)
	if err != nil {
		return err
	}
	slices.Sort(keys)
	if checkpoint != "" {
		i, found := slices.BinarySearch(keys, checkpoint)
		if found {
			i++
		}
		keys = keys[i:]
	}
	r.keys = keys
	return nil
}

func (r *keysReader) Read(_ *flowstone.Context, n int) ([]string, string, bool, error) {
	n = min(n, len(r.keys))
	chunk := r.keys[:n]
	r.keys = r.keys[n:]
	out := make([]string, len(chunk))
	for i, k := range chunk {
		out[i] = strings.TrimPrefix(k, r.prefix)
		if out[i] == "" {
			out[i] = k
		}
	}
	checkpoint := ""
	if n > 0 {
		checkpoint = chunk[n-1]
	}
	return out, checkpoint, len(r.keys) == 0, nil
}

func (r *keysReader) Close() error { return nil }
