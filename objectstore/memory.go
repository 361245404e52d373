package objectstore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/flowstone-go/flowstone/objectstore/internal/integrity"
)

// NewMemory returns a Store that keeps objects in process memory: for tests
// and for small pipelines whose results need not outlive the process.
func NewMemory() Store {
	return &memoryStore{objects: make(map[string]memoryObject)}
}

type memoryStore struct {
	mu      sync.RWMutex
	objects map[string]memoryObject
}

// memoryObject is immutable once stored: readers keep using the slice they
// got while a Put replaces the map entry.
type memoryObject struct {
	data []byte
	sum  string
}

func (m *memoryStore) Name() string { return "memory" }

func (m *memoryStore) Put(ctx context.Context, key string, r io.Reader, size int64) (Info, error) {
	if err := ValidKey(key); err != nil {
		return Info{}, err
	}
	var buf bytes.Buffer
	if size > 0 {
		// ReadFrom wants MinRead spare bytes to see EOF; without them it
		// would double the buffer at the very end.
		buf.Grow(int(size) + bytes.MinRead)
	}
	src := integrity.NewSource(ctx, r, size)
	if _, err := buf.ReadFrom(src); err != nil {
		return Info{}, fmt.Errorf("objectstore: memory: put %q: %w", key, err)
	}
	if err := integrity.ContextErr(ctx); err != nil {
		return Info{}, fmt.Errorf("objectstore: memory: put %q: %w", key, err)
	}
	obj := memoryObject{data: buf.Bytes(), sum: src.Sum()}
	m.mu.Lock()
	m.objects[key] = obj
	m.mu.Unlock()
	return obj.info(key), nil
}

func (m *memoryStore) Get(ctx context.Context, key string) (io.ReadCloser, Info, error) {
	obj, err := m.lookup(ctx, key)
	if err != nil {
		return nil, Info{}, err
	}
	info := obj.info(key)
	rc := io.NopCloser(bytes.NewReader(obj.data))
	return integrity.NewReader(rc, key, info.Size, info.SHA256), info, nil
}

func (m *memoryStore) Stat(ctx context.Context, key string) (Info, error) {
	obj, err := m.lookup(ctx, key)
	if err != nil {
		return Info{}, err
	}
	return obj.info(key), nil
}

func (m *memoryStore) Delete(ctx context.Context, key string) error {
	if err := ValidKey(key); err != nil {
		return err
	}
	if err := integrity.ContextErr(ctx); err != nil {
		return fmt.Errorf("objectstore: memory: delete %q: %w", key, err)
	}
	m.mu.Lock()
	delete(m.objects, key)
	m.mu.Unlock()
	return nil
}

// Corrupt flips the first byte of key's object and keeps its recorded
// checksum, the way bit rot would. It lets conformance tests check that Get
// notices damage; see storetest.Corrupter.
func (m *memoryStore) Corrupt(ctx context.Context, key string) error {
	if err := ValidKey(key); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	obj, ok := m.objects[key]
	if !ok {
		return fmt.Errorf("objectstore: memory: corrupt %q: %w", key, ErrNotFound)
	}
	if len(obj.data) == 0 {
		return fmt.Errorf("objectstore: memory: corrupt %q: the object is empty, no byte to flip", key)
	}
	// Copy, so readers of the old slice keep seeing what they opened.
	damaged := bytes.Clone(obj.data)
	damaged[0] ^= 0xff
	m.objects[key] = memoryObject{data: damaged, sum: obj.sum}
	return nil
}

func (m *memoryStore) lookup(ctx context.Context, key string) (memoryObject, error) {
	if err := ValidKey(key); err != nil {
		return memoryObject{}, err
	}
	if err := integrity.ContextErr(ctx); err != nil {
		return memoryObject{}, fmt.Errorf("objectstore: memory: %q: %w", key, err)
	}
	m.mu.RLock()
	obj, ok := m.objects[key]
	m.mu.RUnlock()
	if !ok {
		return memoryObject{}, fmt.Errorf("objectstore: memory: %q: %w", key, ErrNotFound)
	}
	return obj, nil
}

func (o memoryObject) info(key string) Info {
	return Info{Key: key, Size: int64(len(o.data)), SHA256: o.sum}
}
