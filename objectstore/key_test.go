package objectstore_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/flowstone-go/flowstone/objectstore"
)

func FuzzValidKey(f *testing.F) {
	for _, k := range []string{"a", "a/b", "..", "a/../b", "", " ", "a//b", "runs/1/out.bin", strings.Repeat("x", 1025)} {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, key string) {
		err := objectstore.ValidKey(key)
		if err != nil {
			if !errors.Is(err, objectstore.ErrInvalidKey) {
				t.Fatalf("ValidKey(%q) = %v, not ErrInvalidKey", key, err)
			}
			return
		}
		if len(key) == 0 || len(key) > objectstore.MaxKeyLen {
			t.Fatalf("ValidKey accepted %d bytes", len(key))
		}
		for _, seg := range strings.Split(key, "/") {
			if seg == "" || seg == "." || seg == ".." {
				t.Fatalf("ValidKey accepted segment %q in %q", seg, key)
			}
			if strings.Trim(seg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._=-") != "" {
				t.Fatalf("ValidKey accepted %q", key)
			}
		}
	})
}
