package flowstone_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
)

// proposalPipeline is the DAG drawn in the API proposal's graph example.
func proposalPipeline(t testing.TB) *flowstone.Pipeline {
	t.Helper()
	return flowstone.MustPipeline("proposal",
		flowstone.Asset("raw", noop),
		flowstone.Asset("cleaned", noop, flowstone.DependsOn("raw")),
		flowstone.Asset("validated", noop, flowstone.DependsOn("cleaned")),
		flowstone.Asset("enriched", noop, flowstone.DependsOn("cleaned")),
		flowstone.Asset("output", noop, flowstone.DependsOn("enriched")),
		flowstone.Asset("metrics", noop, flowstone.DependsOn("raw")),
	)
}

// diamondPipeline: top feeds left and right, which both feed bottom, which
// feeds report.
func diamondPipeline(t testing.TB) *flowstone.Pipeline {
	t.Helper()
	return flowstone.MustPipeline("diamond",
		flowstone.Asset("top", noop),
		flowstone.Asset("left", noop, flowstone.DependsOn("top")),
		flowstone.Asset("right", noop, flowstone.DependsOn("top")),
		flowstone.Asset("bottom", noop, flowstone.DependsOn("left", "right")),
		flowstone.Asset("report", noop, flowstone.DependsOn("bottom")),
	)
}

// multiRootPipeline has two sources, a join, and an isolated asset.
func multiRootPipeline(t testing.TB) *flowstone.Pipeline {
	t.Helper()
	return flowstone.MustPipeline("multi",
		flowstone.Asset("orders", noop),
		flowstone.Asset("customers", noop),
		flowstone.Asset("joined", noop, flowstone.DependsOn("orders", "customers")),
		flowstone.Asset("audit", noop, flowstone.OptionalDeps("orders")),
		flowstone.Asset("lonely", noop),
	)
}

func TestGraphASCII(t *testing.T) {
	tests := []struct {
		name string
		p    *flowstone.Pipeline
		want string
	}{
		{"the proposal's example", proposalPipeline(t), `raw
├── cleaned
│   ├── validated
│   └── enriched
│       └── output
└── metrics
`},
		// An asset with several dependencies appears under each; its own
		// dependents are drawn once, under the first, and marked elsewhere.
		{"diamond", diamondPipeline(t), `top
├── left
│   └── bottom
│       └── report
└── right
    └── bottom (↑)
`},
		{"several roots", multiRootPipeline(t), `orders
├── joined
└── audit
customers
└── joined
lonely
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := flowstone.Graph(tt.p)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("Graph =\n%s\nwant\n%s", got, tt.want)
			}
			// The explicit format and the pipeline method agree.
			if g, _ := flowstone.Graph(tt.p, flowstone.Format(flowstone.ASCII)); g != got {
				t.Fatalf("Format(ASCII) differs from the default:\n%s", g)
			}
			if g, _ := tt.p.Graph(); g != got {
				t.Fatalf("p.Graph() differs from flowstone.Graph:\n%s", g)
			}
		})
	}
}

func TestGraphASCIIIsStable(t *testing.T) {
	// Declaration order does not matter beyond ties: the same DAG declared
	// upside down draws the same tree every time.
	p := flowstone.MustPipeline("proposal",
		flowstone.Asset("output", noop, flowstone.DependsOn("enriched")),
		flowstone.Asset("validated", noop, flowstone.DependsOn("cleaned")),
		flowstone.Asset("enriched", noop, flowstone.DependsOn("cleaned")),
		flowstone.Asset("cleaned", noop, flowstone.DependsOn("raw")),
		flowstone.Asset("raw", noop),
		flowstone.Asset("metrics", noop, flowstone.DependsOn("raw")),
	)
	first, err := flowstone.Graph(p)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if g, _ := flowstone.Graph(p); g != first {
			t.Fatalf("graph changed between calls:\n%s\nthen\n%s", first, g)
		}
	}
	for _, name := range flowstone.Assets(p) {
		if !strings.Contains(first, name) {
			t.Fatalf("graph lacks %q:\n%s", name, first)
		}
	}
}

func TestGraphMermaid(t *testing.T) {
	tests := []struct {
		name  string
		p     *flowstone.Pipeline
		edges []string
	}{
		{"the proposal's example", proposalPipeline(t), []string{
			"  raw --> cleaned\n", "  cleaned --> validated\n", "  cleaned --> enriched\n",
			"  enriched --> output\n", "  raw --> metrics\n"}},
		{"diamond", diamondPipeline(t), []string{
			"  top --> left\n", "  top --> right\n", "  left --> bottom\n", "  right --> bottom\n", "  bottom --> report\n"}},
		{"several roots", multiRootPipeline(t), []string{
			"  orders --> joined\n", "  customers --> joined\n", "  orders -.-> audit\n", "  lonely\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := flowstone.Graph(tt.p, flowstone.Format(flowstone.Mermaid))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(got, "graph TD\n") {
				t.Fatalf("mermaid does not start with \"graph TD\":\n%s", got)
			}
			for _, e := range tt.edges {
				if !strings.Contains(got, e) {
					t.Fatalf("mermaid lacks %q:\n%s", e, got)
				}
			}
			// Every line after the header is an edge or a lone node we expect.
			if lines := strings.Count(got, "\n") - 1; lines != len(tt.edges) {
				t.Fatalf("mermaid has %d lines after the header, want %d:\n%s", lines, len(tt.edges), got)
			}
		})
	}
}

func TestGraphDOTIsAcceptedByGraphviz(t *testing.T) {
	dot, err := exec.LookPath("dot")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("Graphviz `dot` is not on PATH; CI installs graphviz so this check must run there")
		}
		t.Skip("Graphviz `dot` is not on PATH; install graphviz to check the DOT output")
	}
	for _, p := range []*flowstone.Pipeline{proposalPipeline(t), diamondPipeline(t), multiRootPipeline(t)} {
		t.Run(p.Name(), func(t *testing.T) {
			src, err := flowstone.Graph(p, flowstone.Format(flowstone.DOT))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(src, "digraph ") {
				t.Fatalf("DOT does not start with digraph:\n%s", src)
			}
			for _, name := range flowstone.Assets(p) {
				if !strings.Contains(src, `"`+name+`"`) {
					t.Fatalf("DOT lacks node %q:\n%s", name, src)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, dot, "-Tsvg")
			cmd.Stdin = strings.NewReader(src)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("dot -Tsvg rejected the graph: %v\n%s\n%s", err, stderr.String(), src)
			}
			if stderr.Len() > 0 {
				t.Fatalf("dot -Tsvg warned: %s\n%s", stderr.String(), src)
			}
			svg := stdout.String()
			if !strings.Contains(svg, "<svg") {
				t.Fatalf("dot produced no SVG:\n%s", svg)
			}
			// Every asset is drawn as a node.
			for _, name := range flowstone.Assets(p) {
				if !strings.Contains(svg, "<title>"+name+"</title>") {
					t.Fatalf("SVG has no node %q", name)
				}
			}
		})
	}
}

func TestGraphUnknownFormat(t *testing.T) {
	_, err := flowstone.Graph(proposalPipeline(t), flowstone.Format(flowstone.GraphFormat(42)))
	wantType(t, err, flowstone.TypeBadRequest)
	if _, err := flowstone.ParseGraphFormat("png"); err == nil {
		t.Fatal("ParseGraphFormat(png) succeeded")
	}
	for _, f := range []flowstone.GraphFormat{flowstone.ASCII, flowstone.Mermaid, flowstone.DOT} {
		got, err := flowstone.ParseGraphFormat(f.String())
		if err != nil || got != f {
			t.Fatalf("ParseGraphFormat(%q) = %v, %v", f.String(), got, err)
		}
	}
}
