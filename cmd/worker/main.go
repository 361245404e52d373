// Command worker is a FlowStone fleet worker: it hosts the bundled pipelines,
// executes their tasks from JetStream and drains on SIGTERM. Start or kill
// any number of them. Configure it with flags or the environment; see -help
// and package worker/workercmd, whose Main also builds the worker of your
// own pipelines (examples/ownpipeline).
package main

import (
	"os"

	"github.com/flowstone-go/flowstone/worker/workercmd"
)

func main() { os.Exit(workercmd.Main(os.Args[1:], os.Stderr)) }
