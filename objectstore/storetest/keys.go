package storetest

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/flowstone-go/flowstone/objectstore"
)

// invalidKeys would escape a directory, collide after normalisation, or not
// survive every backend's naming rules.
var invalidKeys = []string{
	"",
	".",
	"..",
	"../keep",
	"a/../keep",
	"a/./keep",
	"/keep",
	"keep/",
	"a//keep",
	"a b",
	"a\x00b",
	`a\keep`,
	"ké",
	"a*",
	"a?b",
	strings.Repeat("a", objectstore.MaxKeyLen+1),
}

func testInvalidKeys(t *testing.T, s objectstore.Store) {
	ctx := context.Background()
	kept := []byte("must survive")
	put(t, s, "keep", kept)
	put(t, s, "a/keep", kept)
	for _, key := range invalidKeys {
		if err := objectstore.ValidKey(key); !errors.Is(err, objectstore.ErrInvalidKey) {
			t.Errorf("ValidKey(%q) = %v, want ErrInvalidKey", key, err)
		}
		if _, err := s.Put(ctx, key, strings.NewReader("evil"), 4); !errors.Is(err, objectstore.ErrInvalidKey) {
			t.Errorf("Put(%q) error = %v, want ErrInvalidKey", key, err)
		}
		if rc, _, err := s.Get(ctx, key); !errors.Is(err, objectstore.ErrInvalidKey) {
			t.Errorf("Get(%q) error = %v, want ErrInvalidKey", key, err)
			if err == nil {
				rc.Close()
			}
		}
		if _, err := s.Stat(ctx, key); !errors.Is(err, objectstore.ErrInvalidKey) {
			t.Errorf("Stat(%q) error = %v, want ErrInvalidKey", key, err)
		}
		if err := s.Delete(ctx, key); !errors.Is(err, objectstore.ErrInvalidKey) {
			t.Errorf("Delete(%q) error = %v, want ErrInvalidKey", key, err)
		}
	}
	checkGet(t, s, "keep", kept)
	checkGet(t, s, "a/keep", kept)
	checkNotFound(t, s, "a")
	checkNotFound(t, s, "evil")
}
