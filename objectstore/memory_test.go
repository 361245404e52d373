package objectstore_test

import (
	"testing"

	"github.com/flowstone-go/flowstone/objectstore"
	"github.com/flowstone-go/flowstone/objectstore/storetest"
)

func TestMemoryConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) objectstore.Store { return objectstore.NewMemory() })
}

func BenchmarkMemory(b *testing.B) {
	storetest.Benchmark(b, func(*testing.B) objectstore.Store { return objectstore.NewMemory() })
}
