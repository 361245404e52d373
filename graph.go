package flowstone

import (
	"strconv"
	"strings"
)

// Graph draws the pipeline's DAG: an ASCII tree (default), Mermaid or DOT.
// Assets appear in the pipeline's stable topological order. In the tree an
// asset with several dependencies appears under each; its own dependents
// are drawn under the first only, and marked "(↑)" elsewhere.
func Graph(p *Pipeline, opts ...GraphOption) (string, error) {
	var cfg graphConfig
	for _, o := range opts {
		o.applyGraph(&cfg)
	}
	switch cfg.format {
	case ASCII:
		return asciiGraph(p), nil
	case Mermaid:
		return mermaidGraph(p), nil
	case DOT:
		return dotGraph(p), nil
	}
	return "", newError(TypeBadRequest, map[string]any{"format": int(cfg.format)}, "unknown graph format %d", int(cfg.format))
}

func asciiGraph(p *Pipeline) string {
	var b strings.Builder
	drawn := make([]bool, len(p.nodes))
	var draw func(n *node, prefix string, last, root bool)
	draw = func(n *node, prefix string, last, root bool) {
		childPrefix := prefix
		if root {
			b.WriteString(n.def.name)
		} else {
			b.WriteString(prefix)
			if last {
				b.WriteString("└── ")
				childPrefix += "    "
			} else {
				b.WriteString("├── ")
				childPrefix += "│   "
			}
			b.WriteString(n.def.name)
		}
		if drawn[n.index] && len(n.dependents) > 0 {
			b.WriteString(" (↑)\n")
			return
		}
		drawn[n.index] = true
		b.WriteByte('\n')
		for i, d := range n.dependents {
			draw(d, childPrefix, i == len(n.dependents)-1, false)
		}
	}
	for _, n := range p.nodes {
		if len(n.inputs) == 0 {
			draw(n, "", true, true)
		}
	}
	return b.String()
}

func mermaidGraph(p *Pipeline) string {
	var b strings.Builder
	b.WriteString("graph TD\n")
	for _, n := range p.nodes {
		if len(n.inputs) == 0 && len(n.dependents) == 0 {
			b.WriteString("  " + n.def.name + "\n")
		}
		for i, in := range n.inputs {
			arrow := " --> "
			if !n.required[i] {
				arrow = " -.-> "
			}
			b.WriteString("  " + in.def.name + arrow + n.def.name + "\n")
		}
	}
	return b.String()
}

func dotGraph(p *Pipeline) string {
	var b strings.Builder
	b.WriteString("digraph " + strconv.Quote(p.name) + " {\n  rankdir=TB;\n")
	for _, n := range p.nodes {
		b.WriteString("  " + strconv.Quote(n.def.name) + ";\n")
	}
	for _, n := range p.nodes {
		for i, in := range n.inputs {
			b.WriteString("  " + strconv.Quote(in.def.name) + " -> " + strconv.Quote(n.def.name))
			if !n.required[i] {
				b.WriteString(" [style=dashed]")
			}
			b.WriteString(";\n")
		}
	}
	b.WriteString("}\n")
	return b.String()
}
