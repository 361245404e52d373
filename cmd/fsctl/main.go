// Command fsctl drives a FlowStone fleet from the command line:
//
//	fsctl VERB [PIPELINE [ASSET]] [flags]
//
// Run "fsctl help" for the verbs; "fsctl demo" shows a whole fleet at
// work. The CLI lives in internal/cli.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/flowstone-go/flowstone/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
