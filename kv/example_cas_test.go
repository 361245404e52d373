package kv_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/flowstone-go/flowstone/kv"
)

// A read-modify-write that is safe against concurrent writers: read the
// revision, write only if it is still current, retry on ErrConflict.
func Example_compareAndSet() {
	ctx := context.Background()
	s := kv.NewMemory()
	defer s.Close()

	if _, err := s.Create(ctx, "runs.r1.attempts", []byte("0")); err != nil {
		fmt.Println(err)
		return
	}
	increment := func() error {
		for {
			e, err := s.Get(ctx, "runs.r1.attempts")
			if err != nil {
				return err
			}
			n, _ := strconv.Atoi(string(e.Value))
			_, err = s.Update(ctx, "runs.r1.attempts", []byte(strconv.Itoa(n+1)), e.Revision)
			if !errors.Is(err, kv.ErrConflict) {
				return err
			}
		}
	}
	for range 3 {
		if err := increment(); err != nil {
			fmt.Println(err)
			return
		}
	}
	e, _ := s.Get(ctx, "runs.r1.attempts")
	fmt.Printf("%s = %s\n", e.Key, e.Value)

	_, err := s.Create(ctx, "runs.r1.attempts", []byte("0"))
	fmt.Println(errors.Is(err, kv.ErrConflict))
	// Output:
	// runs.r1.attempts = 3
	// true
}

// Watch delivers the current values, a zero Entry as the end-of-snapshot
// marker, then live changes; a deletion has a nil Value.
func Example_watch() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := kv.NewMemory()
	defer s.Close()

	_, _ = s.Put(ctx, "runs.r1.state", []byte("running"))
	ch, err := s.Watch(ctx, "runs.")
	if err != nil {
		fmt.Println(err)
		return
	}
	for e := <-ch; e.Key != ""; e = <-ch {
		fmt.Printf("initial %s = %s\n", e.Key, e.Value)
	}
	_, _ = s.Put(ctx, "runs.r1.state", []byte("done"))
	_ = s.Delete(ctx, "runs.r1.state", 0)
	e := <-ch
	fmt.Printf("changed %s = %s\n", e.Key, e.Value)
	e = <-ch
	fmt.Printf("deleted %s: %v\n", e.Key, e.Value == nil)
	// Output:
	// initial runs.r1.state = running
	// changed runs.r1.state = done
	// deleted runs.r1.state: true
}
