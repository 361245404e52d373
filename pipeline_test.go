package flowstone_test

import (
	"strings"
	"testing"

	"github.com/flowstone-go/flowstone"
)

func noop(*flowstone.Context) (any, error) { return nil, nil }

func TestNewPipelineValidation(t *testing.T) {
	tests := []struct {
		name     string
		pipeline string
		assets   []flowstone.AssetDef
		wantType flowstone.ErrorType
		wantMsg  string
	}{
		{"cycle names the path", "p", []flowstone.AssetDef{
			flowstone.Asset("a", noop, flowstone.DependsOn("c")),
			flowstone.Asset("b", noop, flowstone.DependsOn("a")),
			flowstone.Asset("c", noop, flowstone.DependsOn("b")),
		}, flowstone.TypeConfigError, "a -> c -> b -> a"},
		{"self cycle", "p", []flowstone.AssetDef{flowstone.Asset("a", noop, flowstone.DependsOn("a"))}, flowstone.TypeConfigError, "a -> a"},
		{"unknown dependency", "p", []flowstone.AssetDef{flowstone.Asset("a", noop, flowstone.DependsOn("ghost"))}, flowstone.TypeAssetNotFound, `depends on "ghost"`},
		{"unknown optional dependency", "p", []flowstone.AssetDef{flowstone.Asset("a", noop, flowstone.OptionalDeps("ghost"))}, flowstone.TypeAssetNotFound, `"ghost"`},
		{"duplicate", "p", []flowstone.AssetDef{flowstone.Asset("a", noop), flowstone.Asset("a", noop)}, flowstone.TypeConfigError, `"a" is defined twice`},
		{"bad asset name", "p", []flowstone.AssetDef{flowstone.Asset("a.b", noop)}, flowstone.TypeConfigError, `invalid asset name "a.b"`},
		{"bad pipeline name", "sales/2025", []flowstone.AssetDef{flowstone.Asset("a", noop)}, flowstone.TypeConfigError, "invalid pipeline name"},
		{"empty asset name", "p", []flowstone.AssetDef{flowstone.Asset("", noop)}, flowstone.TypeConfigError, "invalid asset name"},
		{"nil function", "p", []flowstone.AssetDef{flowstone.Asset("a", nil)}, flowstone.TypeConfigError, "has no function"},
		{"no assets", "p", nil, flowstone.TypeConfigError, "no assets"},
		{"dependency listed twice", "p", []flowstone.AssetDef{flowstone.Asset("a", noop), flowstone.Asset("b", noop, flowstone.DependsOn("a", "a"))}, flowstone.TypeConfigError, "twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := flowstone.NewPipeline(tt.pipeline, tt.assets...)
			if p != nil {
				t.Fatalf("got a pipeline, want an error")
			}
			fe := wantType(t, err, tt.wantType)
			if !strings.Contains(fe.Message, tt.wantMsg) {
				t.Fatalf("message %q does not contain %q", fe.Message, tt.wantMsg)
			}
		})
	}
}

func TestMustPipelinePanicsOnInvalid(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("MustPipeline did not panic on a cycle")
		}
	}()
	flowstone.MustPipeline("p", flowstone.Asset("a", noop, flowstone.DependsOn("a")))
}

func TestAssetsAreTopologicalAndStable(t *testing.T) {
	p := flowstone.MustPipeline("p",
		flowstone.Asset("report", noop, flowstone.DependsOn("cleaned", "metrics")),
		flowstone.Asset("metrics", noop, flowstone.DependsOn("raw")),
		flowstone.Asset("cleaned", noop, flowstone.DependsOn("raw")),
		flowstone.Asset("raw", noop),
	)
	want := "raw cleaned metrics report"
	for i := 0; i < 5; i++ {
		if got := strings.Join(flowstone.Assets(p), " "); got != want {
			t.Fatalf("Assets = %q, want %q", got, want)
		}
	}
	if got := strings.Join(p.Assets(), " "); got != want {
		t.Fatalf("p.Assets = %q", got)
	}
}

func TestAssetInfo(t *testing.T) {
	p := flowstone.MustPipeline("p",
		flowstone.Asset("raw", noop, flowstone.PartitionedBy(flowstone.Daily)),
		flowstone.Asset("enriched", noop, flowstone.DependsOn("raw"), flowstone.Description("Enriches data"),
			flowstone.PartitionedBy(flowstone.Daily)),
		flowstone.Asset("fan", noop, flowstone.Scatter(func(*flowstone.Context) ([]string, error) { return nil, nil }, flowstone.ScatterConfig{Parallel: 4})),
	)
	info, err := flowstone.AssetInfo(p, "enriched")
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "enriched" || strings.Join(info.DependsOn, ",") != "raw" || info.Description != "Enriches data" ||
		info.PartitionedBy != "date" || info.Scatter || info.Parallel || info.HasApproval {
		t.Fatalf("info = %+v", info)
	}
	// Parallel means joining branches, not a scatter's parallelism.
	fan, _ := p.AssetInfo("fan")
	if !fan.Scatter || fan.Parallel {
		t.Fatalf("fan info = %+v", fan)
	}
	_, err = flowstone.AssetInfo(p, "nope")
	fe := wantType(t, err, flowstone.TypeAssetNotFound)
	if !strings.Contains(fe.Message, "Available: [raw enriched fan]") {
		t.Fatalf("message %q lacks the available assets", fe.Message)
	}
}
