// Command shop-worker is a FlowStone fleet worker hosting the shop pipeline:
// the whole worker of your own pipelines. It takes every flag and
// environment variable of cmd/worker (see -help): start it with NATS_URL
// pointing at the fleet's NATS, as many as you like.
//
//	go run ./examples/ownpipeline/cmd/shop-worker
package main

import (
	"os"

	"github.com/flowstone-go/flowstone/examples/ownpipeline/shop"
	"github.com/flowstone-go/flowstone/worker/workercmd"
)

func main() {
	os.Exit(workercmd.Main(os.Args[1:], os.Stderr, shop.Pipeline()))
}
