package flowstone_test

import (
	"os"
	"testing"

	"github.com/flowstone-go/flowstone"
	"go.uber.org/goleak"
)

// TestMain fails the package if a goroutine outlives the tests. The
// default engine is never stopped in a program; here it is, once every
// test is done, so that its idle goroutines are not taken for a leak.
func TestMain(m *testing.M) {
	code := m.Run()
	flowstone.Default().Close()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			os.Stderr.WriteString("goroutine leak: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}
