package kv

import (
	"context"
	"slices"
	"strings"
	"sync"
)

// Memory is the in-process Store of the embedded engine: a map guarded by a
// read/write mutex with one revision counter for the whole store.
//
// Values are copied on the way in and on the way out, so neither the caller
// nor the store can see the other's later changes. A deleted key keeps a
// small tombstone (its deletion revision, no value), like JetStream's delete
// marker, so Update against a deletion revision behaves the same on both
// backends.
//
// Watchers never slow writers down: a write appends to each matching
// watcher's queue and returns; a goroutine per watcher copies the values out
// and delivers them. The queue is unbounded, so a receiver that stops
// reading without cancelling its context makes the store hold every later
// change for it: cancel the Watch context when done.
//
// The zero Memory is not usable; call NewMemory. Close releases watchers.
type Memory struct {
	mu       sync.RWMutex
	entries  map[string]memEntry
	rev      uint64
	closed   bool
	watchers map[*memWatcher]struct{}
	done     chan struct{} // closed by Close: stops every watcher goroutine
	wg       sync.WaitGroup
}

// memEntry is one key's state. value is nil for a tombstone, never nil for a
// live value; the store never changes a slice once it is stored, so
// watchers may hold it until they copy it out.
type memEntry struct {
	value []byte
	rev   uint64
}

var (
	_ Store           = (*Memory)(nil)
	_ PresenceChecker = (*Memory)(nil)
)

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{
		entries:  make(map[string]memEntry),
		watchers: make(map[*memWatcher]struct{}),
		done:     make(chan struct{}),
	}
}

// Get returns the current value of key (a copy), or ErrNotFound.
func (m *Memory) Get(ctx context.Context, key string) (Entry, error) {
	if err := check(ctx, key); err != nil {
		return Entry{}, err
	}
	m.mu.RLock()
	e, ok := m.entries[key]
	closed := m.closed
	m.mu.RUnlock()
	switch {
	case closed:
		return Entry{}, ErrClosed
	case !ok || e.value == nil:
		return Entry{}, &keyError{err: ErrNotFound, key: key}
	}
	return Entry{Key: key, Value: clone(e.value), Revision: e.rev}, nil
}

// Put writes a copy of value unconditionally and returns the new revision.
func (m *Memory) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	if err := check(ctx, key); err != nil {
		return 0, err
	}
	v := clone(value)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, ErrClosed
	}
	return m.write(key, v), nil
}

// Create writes a copy of value if key has no value, else ErrConflict.
func (m *Memory) Create(ctx context.Context, key string, value []byte) (uint64, error) {
	if err := check(ctx, key); err != nil {
		return 0, err
	}
	v := clone(value)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, ErrClosed
	}
	if e, ok := m.entries[key]; ok && e.value != nil {
		return 0, &keyError{err: ErrConflict, key: key}
	}
	return m.write(key, v), nil
}

// Update writes a copy of value if key's current revision (or deletion
// revision) is rev, else ErrConflict.
func (m *Memory) Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	if err := check(ctx, key); err != nil {
		return 0, err
	}
	v := clone(value)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, ErrClosed
	}
	if e, ok := m.entries[key]; !ok || rev == 0 || e.rev != rev {
		return 0, &keyError{err: ErrConflict, key: key}
	}
	return m.write(key, v), nil
}

// Delete removes key, leaving a tombstone. With rev > 0 only if the current
// revision is rev. Deleting a key that has no value changes nothing.
func (m *Memory) Delete(ctx context.Context, key string, rev uint64) error {
	if err := check(ctx, key); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	e, ok := m.entries[key]
	if rev > 0 && (!ok || e.rev != rev) {
		return &keyError{err: ErrConflict, key: key}
	}
	if !ok || e.value == nil {
		return nil
	}
	m.write(key, nil)
	return nil
}

// Present implements PresenceChecker.
func (m *Memory) Present(ctx context.Context, keys []string) (map[string]bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, k := range keys {
		if err := ValidKey(k); err != nil {
			return nil, err
		}
	}
	present := make(map[string]bool)
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, ErrClosed
	}
	for _, k := range keys {
		if e, ok := m.entries[k]; ok && e.value != nil {
			present[k] = true
		}
	}
	return present, nil
}

// Keys lists the live keys that start with prefix, sorted. It scans every
// key: fine for the embedded engine's sizes.
func (m *Memory) Keys(ctx context.Context, prefix string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := ValidPrefix(prefix); err != nil {
		return nil, err
	}
	var keys []string
	m.mu.RLock()
	if m.closed {
		m.mu.RUnlock()
		return nil, ErrClosed
	}
	for k, e := range m.entries {
		if e.value != nil && strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	m.mu.RUnlock()
	slices.Sort(keys)
	return keys, nil
}

// Close closes every watch channel, waits for the watcher goroutines to
// end, and makes every later call return ErrClosed. It is idempotent.
func (m *Memory) Close() {
	m.mu.Lock()
	if !m.closed {
		m.closed = true
		close(m.done)
	}
	m.mu.Unlock()
	m.wg.Wait()
}

// write stores v (nil for a deletion) under a new revision and queues the
// change for watchers. m.mu must be held for writing.
func (m *Memory) write(key string, v []byte) uint64 {
	m.rev++
	m.entries[key] = memEntry{value: v, rev: m.rev}
	for w := range m.watchers {
		if strings.HasPrefix(key, w.prefix) {
			w.push(Entry{Key: key, Value: v, Revision: m.rev})
		}
	}
	return m.rev
}

// check rejects a done context and an invalid key before any work.
func check(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return ValidKey(key)
}

// clone copies v into memory the store owns; the copy is never nil, so an
// empty value stays distinct from a deletion.
func clone(v []byte) []byte {
	if len(v) == 0 {
		return []byte{}
	}
	return append(make([]byte, 0, len(v)), v...)
}

// keyError names the key a sentinel error is about. It is cheaper than
// fmt.Errorf on paths that fail often (CAS loops, cache misses).
type keyError struct {
	err error
	key string
}

func (e *keyError) Error() string { return e.err.Error() + ": " + e.key }
func (e *keyError) Unwrap() error { return e.err }
