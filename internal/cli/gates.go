package cli

import (
	"encoding/json"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/bridge"
)

// The gates' verbs: approve, reject, approvals, signal.

// decisionCmd is approve (approve true) or reject.
func decisionCmd(approve bool) func(fs *flag.FlagSet) func(*env) error {
	return func(fs *flag.FlagSet) func(*env) error {
		part := partitionFlag(fs)
		reason := fs.String("reason", "", "why, in `TEXT`, kept with the decision (a rejection's error carries it)")
		return func(e *env) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			opts := []flowstone.ApproveOption{flowstone.Reason(*reason)}
			for _, o := range part.partition() {
				opts = append(opts, o)
			}
			verb, done := c.Approve, "approved"
			if !approve {
				verb, done = c.Reject, "rejected"
			}
			if err := verb(e.ctx, e.args[0], e.args[1], opts...); err != nil {
				return err
			}
			p := bridge.ResolveApprove(opts...).Partition
			if e.g.json {
				return e.writeJSON(map[string]any{done: true, "pipeline": e.args[0], "asset": e.args[1], "partition": p})
			}
			fmt.Fprintf(e.stdout, "%s %s [%s]\n", done, e.args[1], safe(p))
			return nil
		}
	}
}

func approvalsCmd(fs *flag.FlagSet) func(*env) error {
	return func(e *env) error {
		c, err := e.client()
		if err != nil {
			return err
		}
		pipeline := ""
		if len(e.args) > 0 {
			pipeline = e.args[0]
		}
		gates, err := c.Approvals(e.ctx, pipeline)
		if err != nil {
			return err
		}
		if e.g.json {
			if gates == nil {
				gates = []flowstone.WaitingGate{}
			}
			return e.writeJSON(map[string]any{"gates": gates})
		}
		if len(gates) == 0 {
			fmt.Fprintln(e.stdout, "nothing waits for an approval or a signal")
			return nil
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PIPELINE\tASSET\tPARTITION\tGATE\tWAITING\tEXPIRES\tRUN\tMESSAGE")
		now := time.Now()
		for _, g := range gates {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", g.Pipeline, g.Asset, safe(g.Partition), g.Kind,
				now.Sub(g.OpenedAt).Round(time.Second), g.Deadline.Format(time.RFC3339), g.RunID, oneLine(g.Message))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		for _, g := range gates {
			if g.Kind == flowstone.GateSignal && g.Token != "" {
				fmt.Fprintf(e.stdout, "\nsignal %s [%s] with:\n  fsctl signal %s --payload JSON\n", g.Asset, safe(g.Partition), g.Token)
			}
		}
		return nil
	}
}

func signalCmd(fs *flag.FlagSet) func(*env) error {
	payload := fs.String("payload", "", "the signal's `JSON` (the asset's OnSignal makes its value of it; default: none)")
	return func(e *env) error {
		var body []byte
		if *payload != "" {
			if !json.Valid([]byte(*payload)) {
				return usageErr(e.cmd, "--payload is not JSON: %s", safe(*payload))
			}
			body = []byte(*payload)
		}
		token := strings.TrimSpace(e.args[0])
		c, err := e.client()
		if err != nil {
			return err
		}
		if err := c.Signal(e.ctx, token, body); err != nil {
			return err
		}
		if e.g.json {
			return e.writeJSON(map[string]bool{"signalled": true})
		}
		fmt.Fprintln(e.stdout, "signalled")
		return nil
	}
}

// printGate adds a gate's lines to a status.
func printGate(tw *tabwriter.Writer, g *flowstone.Gate) {
	if g == nil {
		return
	}
	if g.Decision == "" {
		fmt.Fprintf(tw, "gate:\t%s, waiting since %s, expires %s\n", g.Kind, g.OpenedAt.Format(time.RFC3339), g.Deadline.Format(time.RFC3339))
	} else {
		at := ""
		if g.DecidedAt != nil {
			at = " at " + g.DecidedAt.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "gate:\t%s, %s%s\n", g.Kind, g.Decision, at)
	}
	if g.Message != "" {
		fmt.Fprintf(tw, "message:\t%s\n", oneLine(g.Message))
	}
	if g.Reason != "" {
		fmt.Fprintf(tw, "reason:\t%s\n", oneLine(g.Reason))
	}
}
