package devfleet_test

import (
	"testing"

	"go.uber.org/goleak"
)

// A stopped fleet leaves no goroutine: not its server's, coordinator's or
// workers'.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
