package flowstone

import (
	"sync"
	"sync/atomic"
)

// recordCacheMax bounds the decoded-record cache; past it the cache starts
// over (it is only a shortcut, never the truth).
const recordCacheMax = 100_000

// recordCache keeps the last decoded record of each key with its revision,
// so reading a record the process wrote or read before costs a kv Get but no
// JSON decoding. The kv store stays the truth: an entry is used only when
// its revision is the one the store returns.
type recordCache struct {
	m    sync.Map // key -> *cachedRecord
	size atomic.Int64
}

type cachedRecord struct {
	rev uint64
	rec Materialization // never changed once stored
}

func (c *recordCache) put(key string, rev uint64, rec *Materialization) {
	if c.size.Add(1) > recordCacheMax {
		c.m.Clear()
		c.size.Store(1)
	}
	c.m.Store(key, &cachedRecord{rev: rev, rec: *rec})
}

// refresh replaces the cached record of key, if key is cached.
func (c *recordCache) refresh(key string, rev uint64, rec *Materialization) {
	if _, ok := c.m.Load(key); ok {
		c.m.Store(key, &cachedRecord{rev: rev, rec: *rec})
	}
}

func (c *recordCache) drop(key string) { c.m.Delete(key) }
