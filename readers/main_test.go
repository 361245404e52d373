package readers_test

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// The default embedded engine lives as long as the process.
		goleak.IgnoreAnyFunction("github.com/flowstone-go/flowstone/internal/gopool.(*Pool).run"),
	)
}
