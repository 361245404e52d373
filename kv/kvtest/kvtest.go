// Package kvtest is the conformance suite every kv.Store backend must pass.
//
// A backend's test calls Run with a constructor for empty stores:
//
//	func TestConformance(t *testing.T) {
//		kvtest.Run(t, func(t *testing.T) kv.Store {
//			s := kv.NewMemory()
//			t.Cleanup(s.Close)
//			return s
//		})
//	}
//
// The suite only uses the kv.Store interface and real time-outs as upper
// bounds (it never sleeps), so it runs as fast as the backend allows.
package kvtest

import (
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/kv"
)

// WaitTimeout bounds every wait on a watch channel. A healthy backend
// answers in milliseconds; the bound only turns a hang into a failure.
const WaitTimeout = 10 * time.Second

// Run runs the conformance suite as subtests of t. newStore must return an
// empty store that lives until its test ends (register clean-up with
// t.Cleanup); it is called once per subtest, so subtests may run in
// parallel with each other in the future without sharing state.
func Run(t *testing.T, newStore func(t *testing.T) kv.Store) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, s kv.Store)
	}{
		{"GetMissing", testGetMissing},
		{"PutGet", testPutGet},
		{"PutEmptyValue", testPutEmptyValue},
		{"CreateTwice", testCreateTwice},
		{"CreateAfterDelete", testCreateAfterDelete},
		{"UpdateStale", testUpdateStale},
		{"UpdateMissing", testUpdateMissing},
		{"DeleteWithRevision", testDeleteWithRevision},
		{"DeleteMissing", testDeleteMissing},
		{"KeysPrefix", testKeysPrefix},
		{"KeysEmpty", testKeysEmpty},
		{"InvalidKeys", testInvalidKeys},
		{"LongestKey", testLongestKey},
		{"RevisionsIncrease", testRevisionsIncrease},
		{"ValuesNotAliased", testValuesNotAliased},
		{"WatchInitialAndUpdates", testWatchInitialAndUpdates},
		{"WatchEmpty", testWatchEmpty},
		{"WatchUpdateAtDeletionRevision", testWatchUpdateAtDeletionRevision},
		{"WatchValuesNotAliased", testWatchValuesNotAliased},
		{"WatchCancel", testWatchCancel},
		{"WatchSlowReceiver", testWatchSlowReceiver},
		{"ConcurrentCAS", testConcurrentCAS},
		{"Present", testPresent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.run(t, newStore(t))
		})
	}
}
