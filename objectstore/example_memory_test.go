package objectstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/flowstone-go/flowstone/objectstore"
)

// A result is written once from a stream and read back with its checksum
// verified; any backend behaves the same.
func ExampleNewMemory() {
	ctx := context.Background()
	store := objectstore.NewMemory()

	info, err := store.Put(ctx, "runs/42/summary.txt", strings.NewReader("3 tasks, 0 failed"), -1)
	if err != nil {
		panic(err)
	}
	fmt.Println(info.Size, info.SHA256[:12])

	data, _, err := objectstore.ReadAll(ctx, store, "runs/42/summary.txt")
	if err != nil {
		panic(err)
	}
	fmt.Println(string(data))

	_, err = store.Stat(ctx, "runs/43/summary.txt")
	fmt.Println(errors.Is(err, objectstore.ErrNotFound))

	_, err = store.Put(ctx, "../escape", strings.NewReader("x"), 1)
	fmt.Println(errors.Is(err, objectstore.ErrInvalidKey))
	// Output:
	// 17 9ae09e03aec7
	// 3 tasks, 0 failed
	// true
	// true
}
