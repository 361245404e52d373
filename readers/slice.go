package readers

import (
	"fmt"
	"strconv"

	"github.com/flowstone-go/flowstone"
)

// Slice reads items from a slice, in order; its checkpoint is the number
// of items read. The slice must be the same for every execution of the
// scatter (built from the asset's dependencies, say).
func Slice(items []string) flowstone.ItemReader { return &sliceReader{items: items} }

type sliceReader struct {
	items []string
	at    int
}

func (r *sliceReader) Open(_ *flowstone.Context, checkpoint string) error {
	if checkpoint == "" {
		return nil
	}
	n, err := strconv.Atoi(checkpoint)
	if err != nil || n < 0 || n > len(r.items) {
		return fmt.Errorf("readers: slice checkpoint %q is not an offset within %d items", checkpoint, len(r.items))
	}
	r.at = n
	return nil
}

func (r *sliceReader) Read(_ *flowstone.Context, n int) ([]string, string, bool, error) {
	end := min(r.at+n, len(r.items))
	out := r.items[r.at:end]
	r.at = end
	return out, strconv.Itoa(end), end == len(r.items), nil
}

func (r *sliceReader) Close() error { return nil }
