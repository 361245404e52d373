package pipelines

import (
	"encoding/json"
	"time"

	"github.com/flowstone-go/flowstone"
)

// Build is a release's build: what release.build makes of a version.
type Build struct {
	// Version is the partition built.
	Version string `json:"version"`
	// Files counts what was built.
	Files int `json:"files"`
}

// SmokeReport is what a smoke test reports to release.smoke, by signal.
type SmokeReport struct {
	// Passed says whether the smoke test passed.
	Passed bool `json:"passed"`
	// Notes says more.
	Notes string `json:"notes,omitempty"`
}

// Release is build → publish → announce, and build → smoke, partitioned
// by version (any key): the bundled pipeline with gates.
//
//   - publish waits for an approval ("Publish release <version>?") before
//     it runs, a day at most;
//   - smoke waits for a signal carrying a SmokeReport (its value), an hour
//     at most, after which it records a failed report, "no report".
//
// A fleet runs smoke only with a signal secret (the coordinators'
// --signal-secret-file).
func Release() *flowstone.Pipeline {
	return flowstone.MustPipeline("release",
		flowstone.Asset("build", func(c *flowstone.Context) (any, error) {
			return Build{Version: c.Partition(), Files: 3}, nil
		}, flowstone.PartitionedBy(flowstone.AnyKey), flowstone.Description("Builds a version")),
		flowstone.Asset("publish", func(c *flowstone.Context) (any, error) {
			b, err := flowstone.Dep[Build](c, "build")
			if err != nil {
				return nil, err
			}
			return "published " + b.Version, nil
		}, flowstone.DependsOn("build"), flowstone.Description("Publishes a build, once approved"),
			flowstone.Approval(flowstone.ApprovalConfig{Message: "Publish this release?", Timeout: 24 * time.Hour})),
		flowstone.Asset("announce", func(c *flowstone.Context) (any, error) {
			s, err := flowstone.Dep[string](c, "publish")
			if err != nil {
				return nil, err
			}
			return "announced: " + s, nil
		}, flowstone.DependsOn("publish"), flowstone.Description("Announces a published release")),
		flowstone.Asset("smoke", nil, flowstone.DependsOn("build"), flowstone.Description("A smoke test's report, by signal"),
			flowstone.WaitForSignal(flowstone.SignalConfig{
				Timeout: time.Hour,
				OnSignal: func(c *flowstone.Context, payload []byte) (any, error) {
					var r SmokeReport
					if err := json.Unmarshal(payload, &r); err != nil {
						return nil, err
					}
					return r, nil
				},
				OnTimeout: func(*flowstone.Context) (any, error) { return SmokeReport{Notes: "no report"}, nil },
			})),
	)
}
