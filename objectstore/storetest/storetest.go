// Package storetest is the conformance suite for objectstore.Store. Every
// backend runs it against a real instance of itself, so callers can swap
// backends without re-learning their edge cases.
//
// Use it from a backend's tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) objectstore.Store {
//			return newEmptyStore(t)
//		})
//	}
//
// A store, or a test wrapper around one, that implements Corrupter also gets
// its corruption detection checked. Benchmark measures Put and Get the same
// way for every backend.
package storetest

import (
	"context"
	"testing"

	"github.com/flowstone-go/flowstone/objectstore"
)

// Corrupter is implemented by a store, or a test wrapper around one, that
// can damage an object where it is kept, so the suite can check that Get
// notices.
type Corrupter interface {
	// Corrupt changes at least one stored byte of key's non-empty object
	// and keeps the recorded checksum, the way bit rot would. It is called
	// while no other goroutine uses key.
	Corrupt(ctx context.Context, key string) error
}

// Run runs the conformance suite as parallel subtests. newStore must return
// a fresh, empty store for each subtest and release it with t.Cleanup; it is
// called from parallel subtests, so it must be safe for concurrent use.
func Run(t *testing.T, newStore func(t *testing.T) objectstore.Store) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, s objectstore.Store)
	}{
		{"PutGetRoundtrip", testRoundtrip},
		{"Overwrite", testOverwrite},
		{"NotFound", testNotFound},
		{"DeleteIdempotent", testDeleteIdempotent},
		{"Stat", testStat},
		{"InvalidKeysRejected", testInvalidKeys},
		{"LongestKey", testLongestKey},
		{"EmptyObject", testEmptyObject},
		{"StreamUnknownSize", testStreamUnknownSize},
		{"DeclaredSizeEnforced", testDeclaredSize},
		{"ConcurrentDistinctKeys", testConcurrentDistinctKeys},
		{"ConcurrentOverwrite", testConcurrentOverwrite},
		{"ContextCanceled", testContextCanceled},
		{"CanceledPutKeepsOldObject", testCanceledPut},
		{"CorruptionDetected", testCorruption},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			if s.Name() == "" {
				t.Fatalf("%T.Name() is empty", s)
			}
			tt.run(t, s)
		})
	}
}
