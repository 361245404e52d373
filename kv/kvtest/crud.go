package kvtest

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/flowstone-go/flowstone/kv"
)

func testGetMissing(t *testing.T, s kv.Store) {
	if _, err := s.Get(t.Context(), "missing.key"); !errors.Is(err, kv.ErrNotFound) {
		t.Fatalf("Get(missing) error = %v, want ErrNotFound", err)
	}
}

func testPutGet(t *testing.T, s kv.Store) {
	ctx := t.Context()
	rev := mustPut(t, s, "runs.r1.state", "running")
	got := mustGet(t, s, "runs.r1.state")
	if got.Key != "runs.r1.state" || string(got.Value) != "running" || got.Revision != rev {
		t.Fatalf("Get = %+v, want key runs.r1.state value running revision %d", got, rev)
	}
	rev2, err := s.Put(ctx, "runs.r1.state", []byte("done"))
	if err != nil {
		t.Fatalf("Put over existing: %v", err)
	}
	if got := mustGet(t, s, "runs.r1.state"); string(got.Value) != "done" || got.Revision != rev2 {
		t.Fatalf("Get after overwrite = %+v, want value done revision %d", got, rev2)
	}
}

func testPutEmptyValue(t *testing.T, s kv.Store) {
	for _, v := range [][]byte{nil, {}} {
		if _, err := s.Put(t.Context(), "empty", v); err != nil {
			t.Fatalf("Put(%#v): %v", v, err)
		}
		got := mustGet(t, s, "empty")
		if got.Value == nil || len(got.Value) != 0 {
			t.Fatalf("Get after Put(%#v) = %#v, want empty non-nil value (nil means deleted)", v, got.Value)
		}
	}
}

func testCreateTwice(t *testing.T, s kv.Store) {
	ctx := t.Context()
	rev, err := s.Create(ctx, "lease.a", []byte("first"))
	if err != nil {
		t.Fatalf("first Create: %v", err)
	}
	if _, err := s.Create(ctx, "lease.a", []byte("second")); !errors.Is(err, kv.ErrConflict) {
		t.Fatalf("second Create error = %v, want ErrConflict", err)
	}
	if got := mustGet(t, s, "lease.a"); string(got.Value) != "first" || got.Revision != rev {
		t.Fatalf("after failed Create Get = %+v, want value first revision %d", got, rev)
	}
}

func testCreateAfterDelete(t *testing.T, s kv.Store) {
	ctx := t.Context()
	mustPut(t, s, "lease.b", "old")
	if err := s.Delete(ctx, "lease.b", 0); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Create(ctx, "lease.b", []byte("new")); err != nil {
		t.Fatalf("Create after Delete: %v", err)
	}
	if got := mustGet(t, s, "lease.b"); string(got.Value) != "new" {
		t.Fatalf("Get = %q, want new", got.Value)
	}
}

func testUpdateStale(t *testing.T, s kv.Store) {
	ctx := t.Context()
	r1 := mustPut(t, s, "asset.x", "v1")
	r2 := mustPut(t, s, "asset.x", "v2")
	if _, err := s.Update(ctx, "asset.x", []byte("stale"), r1); !errors.Is(err, kv.ErrConflict) {
		t.Fatalf("Update with stale revision error = %v, want ErrConflict", err)
	}
	if got := mustGet(t, s, "asset.x"); string(got.Value) != "v2" || got.Revision != r2 {
		t.Fatalf("after failed Update Get = %+v, want value v2 revision %d", got, r2)
	}
	r3, err := s.Update(ctx, "asset.x", []byte("v3"), r2)
	if err != nil {
		t.Fatalf("Update with current revision: %v", err)
	}
	if r3 <= r2 {
		t.Fatalf("Update revision %d, want > %d", r3, r2)
	}
	if got := mustGet(t, s, "asset.x"); string(got.Value) != "v3" || got.Revision != r3 {
		t.Fatalf("after Update Get = %+v, want value v3 revision %d", got, r3)
	}
}

func testUpdateMissing(t *testing.T, s kv.Store) {
	ctx := t.Context()
	other := mustPut(t, s, "other", "x") // a revision that exists, on another key
	for _, rev := range []uint64{0, 1, other, other + 1} {
		if _, err := s.Update(ctx, "missing", []byte("v"), rev); !errors.Is(err, kv.ErrConflict) {
			t.Fatalf("Update(missing, rev %d) error = %v, want ErrConflict", rev, err)
		}
	}
	// rev 0 is a conflict on an existing key too: Update never creates.
	if _, err := s.Update(ctx, "other", []byte("v"), 0); !errors.Is(err, kv.ErrConflict) {
		t.Fatalf("Update(existing, rev 0) error = %v, want ErrConflict", err)
	}
	if _, err := s.Get(ctx, "missing"); !errors.Is(err, kv.ErrNotFound) {
		t.Fatalf("Get after failed Updates error = %v, want ErrNotFound", err)
	}
}

func testDeleteWithRevision(t *testing.T, s kv.Store) {
	ctx := t.Context()
	r1 := mustPut(t, s, "job.j1", "a")
	r2 := mustPut(t, s, "job.j1", "b")
	if err := s.Delete(ctx, "job.j1", r1); !errors.Is(err, kv.ErrConflict) {
		t.Fatalf("Delete with stale revision error = %v, want ErrConflict", err)
	}
	if got := mustGet(t, s, "job.j1"); string(got.Value) != "b" {
		t.Fatalf("after failed Delete Get = %q, want b", got.Value)
	}
	if err := s.Delete(ctx, "job.j1", r2); err != nil {
		t.Fatalf("Delete with current revision: %v", err)
	}
	if _, err := s.Get(ctx, "job.j1"); !errors.Is(err, kv.ErrNotFound) {
		t.Fatalf("Get after Delete error = %v, want ErrNotFound", err)
	}
}

func testDeleteMissing(t *testing.T, s kv.Store) {
	ctx := t.Context()
	if err := s.Delete(ctx, "never.written", 0); err != nil {
		t.Fatalf("Delete(missing, 0) = %v, want nil", err)
	}
	if err := s.Delete(ctx, "never.written", 0); err != nil {
		t.Fatalf("second Delete(missing, 0) = %v, want nil", err)
	}
	if err := s.Delete(ctx, "never.written.either", 7); !errors.Is(err, kv.ErrConflict) {
		t.Fatalf("Delete(missing, 7) error = %v, want ErrConflict", err)
	}
	if _, err := s.Get(ctx, "never.written"); !errors.Is(err, kv.ErrNotFound) {
		t.Fatalf("Get after Delete(missing) error = %v, want ErrNotFound", err)
	}
}

func testKeysPrefix(t *testing.T, s kv.Store) {
	ctx := t.Context()
	// Written out of order so a backend that returns insertion order fails.
	for _, k := range []string{"a.b.2", "ab", "a.c", "a.b.1", "a.bc", "b.x", "a.b.gone", "a"} {
		mustPut(t, s, k, "v")
	}
	mustPut(t, s, "a.b.1", "again") // a key written twice is listed once
	if err := s.Delete(ctx, "a.b.gone", 0); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	tests := []struct {
		prefix string
		want   []string
	}{
		{"", []string{"a", "a.b.1", "a.b.2", "a.bc", "a.c", "ab", "b.x"}},
		{"a.b.", []string{"a.b.1", "a.b.2"}},
		{"a.b", []string{"a.b.1", "a.b.2", "a.bc"}},
		{"a.", []string{"a.b.1", "a.b.2", "a.bc", "a.c"}},
		{"a", []string{"a", "a.b.1", "a.b.2", "a.bc", "a.c", "ab"}},
		{"a.b.1", []string{"a.b.1"}},
		{"zzz.", nil},
		{"zzz", nil},
	}
	for _, tt := range tests {
		got, err := s.Keys(ctx, tt.prefix)
		if err != nil {
			t.Fatalf("Keys(%q): %v", tt.prefix, err)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("Keys(%q) = %q, want %q", tt.prefix, got, tt.want)
		}
	}
}

func testKeysEmpty(t *testing.T, s kv.Store) {
	for _, prefix := range []string{"", "a.", "a"} {
		got, err := s.Keys(t.Context(), prefix)
		if err != nil || len(got) != 0 {
			t.Fatalf("Keys(%q) on empty store = %q, %v; want empty list, nil", prefix, got, err)
		}
	}
}

// invalidKeys are rejected by every method: wildcards and separators that
// would change a backend's subject, and malformed token structure.
var invalidKeys = []string{
	"", " ", "a b", "a\tb", "a\nb", "a\x00b", "*", "a.*", ">", "a.>", "a/b",
	".a", "a.", ".", "a..b", "ä", "a\\b", "a:b", "$KV.x",
	strings.Repeat("a", kv.MaxKeyLen+1), // longer subjects can cost a NATS client its connection
}

// invalidPrefixes are rejected by Keys and Watch. ("a." is a valid prefix.)
var invalidPrefixes = []string{" ", "*", "a.*", ">", "a.>", "a/", ".", "..", "a..", ".a", "a b"}

func testInvalidKeys(t *testing.T, s kv.Store) {
	ctx := t.Context()
	rev := mustPut(t, s, "valid", "v")
	for _, key := range invalidKeys {
		calls := []struct {
			name string
			call func() error
		}{
			{"Get", func() error { _, err := s.Get(ctx, key); return err }},
			{"Put", func() error { _, err := s.Put(ctx, key, []byte("x")); return err }},
			{"Create", func() error { _, err := s.Create(ctx, key, []byte("x")); return err }},
			{"Update", func() error { _, err := s.Update(ctx, key, []byte("x"), rev); return err }},
			{"Delete", func() error { return s.Delete(ctx, key, 0) }},
			{"DeleteRev", func() error { return s.Delete(ctx, key, rev) }},
		}
		for _, c := range calls {
			if err := c.call(); !errors.Is(err, kv.ErrInvalidKey) {
				t.Errorf("%s(%q) error = %v, want ErrInvalidKey", c.name, key, err)
			}
		}
	}
	for _, prefix := range invalidPrefixes {
		if _, err := s.Keys(ctx, prefix); !errors.Is(err, kv.ErrInvalidKey) {
			t.Errorf("Keys(%q) error = %v, want ErrInvalidKey", prefix, err)
		}
		if _, err := s.Watch(ctx, prefix); !errors.Is(err, kv.ErrInvalidKey) {
			t.Errorf("Watch(%q) error = %v, want ErrInvalidKey", prefix, err)
		}
	}
	keys, err := s.Keys(ctx, "")
	if err != nil {
		t.Fatalf("Keys: %v", err)
	}
	if !slices.Equal(keys, []string{"valid"}) {
		t.Fatalf("after invalid writes Keys = %q, want only [valid]", keys)
	}
	if got := mustGet(t, s, "valid"); got.Revision != rev {
		t.Fatalf("valid key revision = %d, want %d (an invalid write changed it)", got.Revision, rev)
	}
}

func testLongestKey(t *testing.T, s kv.Store) {
	key := strings.Repeat("k", kv.MaxKeyLen/2-1) + "." + strings.Repeat("v", kv.MaxKeyLen/2)
	rev := mustPut(t, s, key, "long")
	if got := mustGet(t, s, key); string(got.Value) != "long" || got.Revision != rev {
		t.Fatalf("Get(longest key) = %+v, want long at revision %d", got, rev)
	}
	keys, err := s.Keys(t.Context(), key[:kv.MaxKeyLen/2])
	if err != nil || !slices.Equal(keys, []string{key}) {
		t.Fatalf("Keys(longest key's first token.) = %d keys, %v; want the key", len(keys), err)
	}
	// The store still works after the longest key (the connection survived).
	mustPut(t, s, "after", "ok")
}

func testRevisionsIncrease(t *testing.T, s kv.Store) {
	ctx := t.Context()
	var last uint64
	next := func(op string, rev uint64, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", op, err)
		}
		if rev == 0 || rev <= last {
			t.Fatalf("%s revision %d, want > %d", op, rev, last)
		}
		last = rev
	}
	k1, err := s.Put(ctx, "k.1", []byte("a"))
	next("Put k.1", k1, err)
	rev, err := s.Create(ctx, "k.2", []byte("a"))
	next("Create k.2", rev, err)
	rev, err = s.Update(ctx, "k.1", []byte("b"), k1)
	next("Update k.1", rev, err)
	if err := s.Delete(ctx, "k.2", 0); err != nil {
		t.Fatalf("Delete k.2: %v", err)
	}
	rev, err = s.Create(ctx, "k.2", []byte("c"))
	next("Create k.2 again", rev, err)
	rev, err = s.Put(ctx, "k.3", []byte("a"))
	next("Put k.3", rev, err)
}

func testValuesNotAliased(t *testing.T, s kv.Store) {
	ctx := t.Context()
	in := []byte("abc")
	mustPutBytes(t, s, "alias.put", in)
	in[0] = 'X'
	if got := mustGet(t, s, "alias.put"); string(got.Value) != "abc" {
		t.Fatalf("store kept caller's Put buffer: Get = %q, want abc", got.Value)
	}

	in = []byte("def")
	rev, err := s.Create(ctx, "alias.create", in)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	in[0] = 'X'
	if got := mustGet(t, s, "alias.create"); string(got.Value) != "def" {
		t.Fatalf("store kept caller's Create buffer: Get = %q, want def", got.Value)
	}

	in = []byte("ghi")
	if _, err := s.Update(ctx, "alias.create", in, rev); err != nil {
		t.Fatalf("Update: %v", err)
	}
	in[0] = 'X'
	got := mustGet(t, s, "alias.create")
	if string(got.Value) != "ghi" {
		t.Fatalf("store kept caller's Update buffer: Get = %q, want ghi", got.Value)
	}

	// Scribbling over (and appending to) a returned value must not reach
	// the store or a later reader.
	got.Value[0] = 'X'
	_ = append(got.Value[:1], "YZ"...)
	if again := mustGet(t, s, "alias.create"); !bytes.Equal(again.Value, []byte("ghi")) {
		t.Fatalf("Get returned store memory: second Get = %q, want ghi", again.Value)
	}
}

func mustPut(t *testing.T, s kv.Store, key, value string) uint64 {
	t.Helper()
	return mustPutBytes(t, s, key, []byte(value))
}

func mustPutBytes(t *testing.T, s kv.Store, key string, value []byte) uint64 {
	t.Helper()
	rev, err := s.Put(t.Context(), key, value)
	if err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
	if rev == 0 {
		t.Fatalf("Put(%q) revision 0, want > 0", key)
	}
	return rev
}

func mustGet(t *testing.T, s kv.Store, key string) kv.Entry {
	t.Helper()
	e, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return e
}
