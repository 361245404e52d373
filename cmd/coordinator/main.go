// Command coordinator serves the FlowStone API over NATS and drives runs on
// the worker fleet. Configure it with flags or the environment; see -help.
package main

import (
	"os"

	"github.com/flowstone-go/flowstone/internal/daemon"
)

func main() { os.Exit(daemon.RunCoordinator(os.Args[1:], os.Stderr)) }
