package jskv_test

import (
	"strconv"
	"testing"

	"github.com/flowstone-go/flowstone/kv/jskv"
)

// value is a typical small metadata record (an asset's materialization
// state).
var value = []byte(`{"state":"materialized","run":"r-01J9","hash":"9f86d081884c7d65"}`)

func newBenchStore(b *testing.B) *jskv.Store {
	b.Helper()
	return newStore(b, newJetStream(b), "bench")
}

func BenchmarkGet(b *testing.B) {
	s := newBenchStore(b)
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

func BenchmarkCreate(b *testing.B) {
	s := newBenchStore(b)
	ctx := b.Context()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := s.Create(ctx, "assets.daily_sales."+strconv.Itoa(i), value); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUpdate(b *testing.B) {
	s := newBenchStore(b)
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

// BenchmarkKeysSubtree lists 100 keys out of 10,000 with a prefix ending in
// ".": the server filters, so the cost follows the subtree, not the bucket.
func BenchmarkKeysSubtree(b *testing.B) {
	s := newBenchStore(b)
	ctx := b.Context()
	for i := range 10_000 {
		key := "runs.r" + strconv.Itoa(i/100) + ".asset" + strconv.Itoa(i%100)
		if _, err := s.Put(ctx, key, value); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		keys, err := s.Keys(ctx, "runs.r42.")
		if err != nil || len(keys) != 100 {
			b.Fatalf("Keys = %d keys, %v; want 100", len(keys), err)
		}
	}
}
