package coordinator_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine a coordinator, its workers or its engine start must be
// gone once each test has stopped what it started.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
