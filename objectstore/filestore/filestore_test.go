package filestore

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowstone-go/flowstone/objectstore"
	"github.com/flowstone-go/flowstone/objectstore/storetest"
)

// corruptible flips a byte of the object file on disk.
type corruptible struct{ *Store }

func (c corruptible) Corrupt(_ context.Context, key string) error {
	p, err := objectPath(c.dir, key)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, 0); err != nil {
		return err
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, 0); err != nil {
		return err
	}
	return f.Close()
}

func newStore(t testing.TB) *Store {
	t.Helper()
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) objectstore.Store { return corruptible{newStore(t)} })
}

func BenchmarkFile(b *testing.B) {
	storetest.Benchmark(b, func(b *testing.B) objectstore.Store { return newStore(b) })
}

func TestObjectAndObjectsBelowItCoexist(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	for _, key := range []string{"a", "a/b", "a/b/c"} {
		if _, err := s.Put(ctx, key, strings.NewReader(key), int64(len(key))); err != nil {
			t.Fatalf("Put(%q): %v", key, err)
		}
	}
	for _, key := range []string{"a", "a/b", "a/b/c"} {
		got, _, err := objectstore.ReadAll(ctx, s, key)
		if err != nil || string(got) != key {
			t.Errorf("Get(%q) = %q, %v", key, got, err)
		}
	}
}

func TestLongSegments(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	long := strings.Repeat("L", 1000)
	keys := []string{
		long,
		long[:999] + "M",
		"dir/" + strings.Repeat("s", 300) + "/" + strings.Repeat("t", 500),
		strings.Repeat("x", maxSegment),
		strings.Repeat("x", maxSegment+1),
	}
	for i, key := range keys {
		data := []byte(strings.Repeat("v", i+1))
		if _, err := s.Put(ctx, key, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatalf("Put of a key with a %d-byte segment: %v", len(key), err)
		}
	}
	for i, key := range keys {
		got, _, err := objectstore.ReadAll(ctx, s, key)
		if err != nil || len(got) != i+1 {
			t.Errorf("Get(key %d) = %d bytes, %v; want %d bytes", i, len(got), err, i+1)
		}
	}
}

func TestDamagedFileDetected(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		damage func(path string) error
	}{
		{"truncated", func(p string) error { return os.Truncate(p, 100) }},
		{"emptied", func(p string) error { return os.Truncate(p, 0) }},
		{"extended", func(p string) error {
			f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.Write([]byte("x"))
			return err
		}},
		{"checksum flipped", func(p string) error {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b[len(b)-1] ^= 1
			return os.WriteFile(p, b, 0o644)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			data := bytes.Repeat([]byte("payload "), 1000)
			if _, err := s.Put(ctx, "k", bytes.NewReader(data), int64(len(data))); err != nil {
				t.Fatal(err)
			}
			p, _ := objectPath(s.dir, "k")
			if err := tt.damage(p); err != nil {
				t.Fatal(err)
			}
			_, _, err := objectstore.ReadAll(ctx, s, "k")
			if !errors.Is(err, objectstore.ErrChecksum) {
				t.Errorf("Get of a %s file: error = %v, want ErrChecksum", tt.name, err)
			}
		})
	}
}

func TestNoLeftoversAfterFailuresAndDeletes(t *testing.T) {
	s := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Put(ctx, "x/y/z", strings.NewReader("data"), 4); err == nil {
		t.Fatal("Put with a canceled context succeeded")
	}
	if _, err := s.Put(context.Background(), "x/y/z", strings.NewReader("data"), 5); err == nil {
		t.Fatal("Put with a wrong size succeeded")
	}
	if _, err := s.Put(context.Background(), "x/y/z", strings.NewReader("data"), 4); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(context.Background(), "x/y/z"); err != nil {
		t.Fatal(err)
	}
	var left []string
	err := filepath.WalkDir(s.dir, func(p string, _ fs.DirEntry, err error) error {
		if p != s.dir {
			left = append(left, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("store directory still holds %q", left)
	}
}

func FuzzObjectPath(f *testing.F) {
	f.Add("a", "a/b")
	f.Add("..", "a/../b")
	f.Add(strings.Repeat("q", 201), strings.Repeat("q", 64)+"+x")
	f.Add("x@", "x/y")
	dir := filepath.Join(os.TempDir(), "store")
	f.Fuzz(func(t *testing.T, a, b string) {
		pa, errA := objectPath(dir, a)
		pb, errB := objectPath(dir, b)
		for _, c := range []struct {
			key, path string
			err       error
		}{{a, pa, errA}, {b, pb, errB}} {
			if (c.err == nil) != (objectstore.ValidKey(c.key) == nil) {
				t.Fatalf("objectPath(%q) error = %v, ValidKey disagrees", c.key, c.err)
			}
			if c.err != nil {
				continue
			}
			rel, err := filepath.Rel(dir, c.path)
			if err != nil || !filepath.IsLocal(rel) {
				t.Fatalf("objectPath(%q) = %q escapes %q", c.key, c.path, dir)
			}
			for _, name := range strings.Split(rel, string(filepath.Separator)) {
				if len(name) > 255 {
					t.Fatalf("objectPath(%q) has a %d-byte name", c.key, len(name))
				}
			}
			if !strings.HasSuffix(c.path, objectSuffix) {
				t.Fatalf("objectPath(%q) = %q lacks the object suffix", c.key, c.path)
			}
		}
		if errA == nil && errB == nil && a != b {
			if pa == pb {
				t.Fatalf("keys %q and %q share the file %q", a, b, pa)
			}
			if strings.HasPrefix(pb, pa+string(filepath.Separator)) || strings.HasPrefix(pa, pb+string(filepath.Separator)) {
				t.Fatalf("one object file is a directory of the other: %q, %q", pa, pb)
			}
		}
	})
}
