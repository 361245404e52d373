package kv_test

import (
	"testing"

	"github.com/flowstone-go/flowstone/kv"
	"github.com/flowstone-go/flowstone/kv/kvtest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestMemoryConformance(t *testing.T) {
	kvtest.Run(t, func(t *testing.T) kv.Store {
		s := kv.NewMemory()
		t.Cleanup(s.Close)
		return s
	})
}
