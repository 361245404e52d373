package kvtest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/flowstone-go/flowstone/kv"
)

// testPresent checks kv.PresenceChecker, for a backend that has it: live
// keys are present, missing and deleted ones are not, many keys at once
// are answered whole, and an invalid key reads nothing.
func testPresent(t *testing.T, s kv.Store) {
	pc, ok := s.(kv.PresenceChecker)
	if !ok {
		t.Skip("the backend does not implement kv.PresenceChecker")
	}
	ctx := t.Context()
	const n = 2500 // several batches on a backend that batches
	var keys []string
	want := map[string]bool{}
	for i := range n {
		k := fmt.Sprintf("p.k%05d", i)
		keys = append(keys, k)
		if i%3 == 0 {
			mustPut(t, s, k, "v")
			want[k] = true
		}
	}
	mustPut(t, s, "p.gone", "v")
	if err := s.Delete(ctx, "p.gone", 0); err != nil {
		t.Fatal(err)
	}
	keys = append(keys, "p.gone", "q.elsewhere")
	got, err := pc.Present(ctx, keys)
	if err != nil {
		t.Fatalf("Present: %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("Present found %d keys, want %d", len(got), len(want))
	}
	for k := range want {
		if !got[k] {
			t.Fatalf("Present misses %s", k)
		}
	}
	if got, err := pc.Present(ctx, nil); err != nil || len(got) != 0 {
		t.Fatalf("Present(nil) = %v %v", got, err)
	}
	if _, err := pc.Present(ctx, []string{"p.k00000", "bad key"}); !errors.Is(err, kv.ErrInvalidKey) {
		t.Fatalf("Present with an invalid key: %v, want ErrInvalidKey", err)
	}
}
