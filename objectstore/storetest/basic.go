package storetest

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/flowstone-go/flowstone/objectstore"
)

func testRoundtrip(t *testing.T, s objectstore.Store) {
	for i, key := range []string{
		"a",
		"result.bin",
		"runs/42/step=3/part-0001.parquet",
		"A/b=c/d_e-f.g",
		".hidden/...",
		"x/y/z",
	} {
		data := payload(uint64(i), 1000+i*7919)
		put(t, s, key, data)
		checkGet(t, s, key, data)
	}
}

func testOverwrite(t *testing.T, s objectstore.Store) {
	long, short := payload(1, 300<<10), payload(2, 10)
	put(t, s, "k", long)
	put(t, s, "k", short)
	checkGet(t, s, "k", short)
	info, err := s.Stat(context.Background(), "k")
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	checkInfo(t, "Stat", info, "k", short)
}

func testNotFound(t *testing.T, s objectstore.Store) {
	checkNotFound(t, s, "missing")
	checkNotFound(t, s, "missing/deeper/key")
	put(t, s, "dir/present", []byte("x"))
	checkNotFound(t, s, "dir")
	checkNotFound(t, s, "dir/present/below")
}

func testDeleteIdempotent(t *testing.T, s objectstore.Store) {
	ctx := context.Background()
	if err := s.Delete(ctx, "never/written"); err != nil {
		t.Fatalf("Delete of a missing key: %v", err)
	}
	put(t, s, "gone/soon", []byte("bye"))
	put(t, s, "gone/stays", []byte("stay"))
	for i := range 2 {
		if err := s.Delete(ctx, "gone/soon"); err != nil {
			t.Fatalf("Delete #%d: %v", i+1, err)
		}
	}
	checkNotFound(t, s, "gone/soon")
	checkGet(t, s, "gone/stays", []byte("stay"))
	// The key can be written again after a delete.
	put(t, s, "gone/soon", []byte("back"))
	checkGet(t, s, "gone/soon", []byte("back"))
}

func testStat(t *testing.T, s objectstore.Store) {
	ctx := context.Background()
	data := payload(3, 123457)
	if _, err := s.Put(ctx, "stat/unknown", stream(3, int64(len(data))), -1); err != nil {
		t.Fatalf("Put: %v", err)
	}
	put(t, s, "stat/known", data)
	for _, key := range []string{"stat/unknown", "stat/known"} {
		info, err := s.Stat(ctx, key)
		if err != nil {
			t.Fatalf("Stat(%q): %v", key, err)
		}
		checkInfo(t, "Stat", info, key, data)
	}
}

func testEmptyObject(t *testing.T, s objectstore.Store) {
	ctx := context.Background()
	put(t, s, "empty/known", nil)
	info, err := s.Put(ctx, "empty/unknown", opaque{strings.NewReader("")}, -1)
	if err != nil {
		t.Fatalf("Put unknown size: %v", err)
	}
	checkInfo(t, "Put", info, "empty/unknown", nil)
	for _, key := range []string{"empty/known", "empty/unknown"} {
		checkGet(t, s, key, nil)
		info, err := s.Stat(ctx, key)
		if err != nil {
			t.Fatalf("Stat(%q): %v", key, err)
		}
		checkInfo(t, "Stat", info, key, nil)
	}
}

func testLongestKey(t *testing.T, s objectstore.Store) {
	// Segments stay below 255 bytes so file-backed S3 servers can hold them.
	segs := []string{
		strings.Repeat("a", 200), strings.Repeat("b", 200), strings.Repeat("c", 200),
		strings.Repeat("d", 200), strings.Repeat("e", 220),
	}
	key := strings.Join(segs, "/")
	if len(key) != objectstore.MaxKeyLen {
		t.Fatalf("test key is %d bytes, want %d", len(key), objectstore.MaxKeyLen)
	}
	data := []byte(fmt.Sprintf("stored under a %d-byte key", len(key)))
	put(t, s, key, data)
	checkGet(t, s, key, data)
	if err := s.Delete(context.Background(), key); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	checkNotFound(t, s, key)
}
