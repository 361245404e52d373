package kv_test

import (
	"strconv"
	"testing"

	"github.com/flowstone-go/flowstone/kv"
)

// value is a typical small metadata record (an asset's materialization
// state).
var value = []byte(`{"state":"materialized","run":"r-01J9","hash":"9f86d081884c7d65"}`)

func BenchmarkMemoryGet(b *testing.B) {
	s := kv.NewMemory()
	b.Cleanup(s.Close)
	ctx := b.Context()
	if _, err := s.Put(ctx, "assets.daily_sales.2026-01-01", value); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Get(ctx, "assets.daily_sales.2026-01-01"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMemoryGetParallel(b *testing.B) {
	s := kv.NewMemory()
	b.Cleanup(s.Close)
	ctx := b.Context()
	if _, err := s.Put(ctx, "assets.daily_sales.2026-01-01", value); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Get(ctx, "assets.daily_sales.2026-01-01"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkMemoryCreate creates keys in stores of up to createBatch keys (a
// large run's worth of metadata), so it measures Create rather than the
// growth of one ever larger map.
func BenchmarkMemoryCreate(b *testing.B) {
	ctx := b.Context()
	keys := createKeys()
	var s *kv.Memory
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%len(keys) == 0 {
			b.StopTimer()
			if s != nil {
				s.Close()
			}
			s = kv.NewMemory()
			b.StartTimer()
		}
		if _, err := s.Create(ctx, keys[i%len(keys)], value); err != nil {
			b.Fatal(err)
		}
	}
	s.Close()
}

// createBatch is how many keys BenchmarkMemoryCreate puts in one store.
const createBatch = 10_000

// createKeys builds the keys outside the timer: formatting them is the
// caller's cost, not the store's.
func createKeys() []string {
	keys := make([]string, createBatch)
	for i := range keys {
		keys[i] = "assets.daily_sales." + strconv.Itoa(i)
	}
	return keys
}

func BenchmarkMemoryUpdate(b *testing.B) {
	s := kv.NewMemory()
	b.Cleanup(s.Close)
	ctx := b.Context()
	rev, err := s.Put(ctx, "assets.daily_sales.2026-01-01", value)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if rev, err = s.Update(ctx, "assets.daily_sales.2026-01-01", value, rev); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMemoryUpdateWatched is Update with one watcher receiving every
// change: the cost a watcher adds to the writer.
func BenchmarkMemoryUpdateWatched(b *testing.B) {
	s := kv.NewMemory()
	b.Cleanup(s.Close)
	ctx := b.Context()
	rev, err := s.Put(ctx, "assets.daily_sales.2026-01-01", value)
	if err != nil {
		b.Fatal(err)
	}
	ch, err := s.Watch(ctx, "assets.")
	if err != nil {
		b.Fatal(err)
	}
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for range ch {
		}
	}()
	b.ReportAllocs()
	for b.Loop() {
		if rev, err = s.Update(ctx, "assets.daily_sales.2026-01-01", value, rev); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	s.Close()
	<-drained
}
