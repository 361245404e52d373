package kv_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/flowstone-go/flowstone/kv"
)

func TestValidKey(t *testing.T) {
	tests := []struct {
		key  string
		want error
	}{
		{"a", nil},
		{"runs.r-1.asset_x.part=2026-01-01", nil},
		{"A.B.c9", nil},
		{"", kv.ErrInvalidKey},
		{".a", kv.ErrInvalidKey},
		{"a.", kv.ErrInvalidKey},
		{"a..b", kv.ErrInvalidKey},
		{"a b", kv.ErrInvalidKey},
		{"a.*", kv.ErrInvalidKey},
		{"a.>", kv.ErrInvalidKey},
		{"a/b", kv.ErrInvalidKey},
		{"é", kv.ErrInvalidKey},
		{strings.Repeat("a", kv.MaxKeyLen), nil},
		{strings.Repeat("a", kv.MaxKeyLen+1), kv.ErrInvalidKey},
	}
	for _, tt := range tests {
		if err := kv.ValidKey(tt.key); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("ValidKey(%q) = %v, want %v", tt.key, err, tt.want)
		}
	}
}

func TestValidPrefix(t *testing.T) {
	tests := []struct {
		prefix string
		ok     bool
	}{
		{"", true},
		{"a", true},
		{"a.", true},
		{"a.b.", true},
		{"a.b", true},
		{".", false},
		{"a..", false},
		{".a", false},
		{"a.>", false},
		{">", false},
		{"*", false},
		{"a b", false},
	}
	for _, tt := range tests {
		err := kv.ValidPrefix(tt.prefix)
		if tt.ok != (err == nil) || (err != nil && !errors.Is(err, kv.ErrInvalidKey)) {
			t.Errorf("ValidPrefix(%q) = %v, want ok=%v", tt.prefix, err, tt.ok)
		}
	}
}

// FuzzValidKey checks that every string is either rejected with
// ErrInvalidKey (and then refused by the store) or is a key that round-trips
// through the memory store and lists under its own first token.
func FuzzValidKey(f *testing.F) {
	for _, seed := range []string{"a", "a.b", "runs.r-1.x=y", "", ".", "a..b", "a.", "a b", "*", ">", "a/b", "é", "\x00"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, key string) {
		ctx := t.Context()
		s := kv.NewMemory()
		defer s.Close()
		err := kv.ValidKey(key)
		if err != nil {
			if !errors.Is(err, kv.ErrInvalidKey) {
				t.Fatalf("ValidKey(%q) = %v, want ErrInvalidKey", key, err)
			}
			if _, err := s.Put(ctx, key, []byte("v")); !errors.Is(err, kv.ErrInvalidKey) {
				t.Fatalf("Put(%q) error = %v, want ErrInvalidKey", key, err)
			}
			return
		}
		if key == "" || strings.HasPrefix(key, ".") || strings.HasSuffix(key, ".") || strings.Contains(key, "..") ||
			strings.ContainsAny(key, "*> \t\r\n/") || len(key) > kv.MaxKeyLen {
			t.Fatalf("ValidKey accepted %q", key)
		}
		value := []byte(key)
		rev, err := s.Put(ctx, key, value)
		if err != nil {
			t.Fatalf("Put(%q): %v", key, err)
		}
		got, err := s.Get(ctx, key)
		if err != nil || got.Key != key || got.Revision != rev || !bytes.Equal(got.Value, value) {
			t.Fatalf("Get(%q) = %+v, %v; want the value put at revision %d", key, got, err, rev)
		}
		if err := kv.ValidPrefix(key); err != nil {
			t.Fatalf("valid key %q is not a valid prefix: %v", key, err)
		}
		if err := kv.ValidPrefix(key + "."); err != nil {
			t.Fatalf("valid key %q plus a dot is not a valid prefix: %v", key, err)
		}
		first, _, _ := strings.Cut(key, ".")
		keys, err := s.Keys(ctx, first)
		if err != nil || len(keys) != 1 || keys[0] != key {
			t.Fatalf("Keys(%q) = %q, %v; want [%q]", first, keys, err, key)
		}
	})
}
