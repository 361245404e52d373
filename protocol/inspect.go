package protocol

// GraphFormat is the notation of a pipeline graph.
type GraphFormat string

// The graph formats.
const (
	GraphASCII   GraphFormat = "ascii"   // an indented tree (the default)
	GraphMermaid GraphFormat = "mermaid" // a Mermaid flowchart
	GraphDOT     GraphFormat = "dot"     // Graphviz DOT
)

// GraphRequest asks for a pipeline's DAG (verb graph).
type GraphRequest struct {
	// V is the protocol version, Version.
	V int `json:"v"`
	// Pipeline names the pipeline.
	Pipeline string `json:"pipeline"`
	// Format is the notation; "" means GraphASCII.
	Format GraphFormat `json:"format,omitempty"`
}

// Verb returns VerbGraph.
func (GraphRequest) Verb() string { return VerbGraph }
func (GraphRequest) isRequest()   {}

// Validate checks the version, the pipeline name and the format.
func (r GraphRequest) Validate() *Error {
	if err := checkPipeline(r.V, r.Pipeline); err != nil {
		return err
	}
	switch r.Format {
	case "", GraphASCII, GraphMermaid, GraphDOT:
		return nil
	}
	return fieldErrorf("format", "format %s is not %q, %q or %q", quote(string(r.Format)), GraphASCII, GraphMermaid, GraphDOT)
}

// GraphReply answers a GraphRequest.
type GraphReply struct {
	// Graph is the DAG in the requested notation.
	Graph string `json:"graph"`
}

func (GraphReply) isReply() {}

// Validate accepts every GraphReply.
func (GraphReply) Validate() *Error { return nil }

// AssetsRequest lists a pipeline's assets (verb assets).
type AssetsRequest struct {
	// V is the protocol version, Version.
	V int `json:"v"`
	// Pipeline names the pipeline.
	Pipeline string `json:"pipeline"`
}

// Verb returns VerbAssets.
func (AssetsRequest) Verb() string { return VerbAssets }
func (AssetsRequest) isRequest()   {}

// Validate checks the version and the pipeline name.
func (r AssetsRequest) Validate() *Error { return checkPipeline(r.V, r.Pipeline) }

// AssetsReply answers an AssetsRequest.
type AssetsReply struct {
	// Assets names the pipeline's assets, in the pipeline's order.
	Assets []string `json:"assets"`
}

func (AssetsReply) isReply() {}

// Validate checks every name.
func (r AssetsReply) Validate() *Error { return checkNames("assets", r.Assets) }

// InfoRequest describes one asset (verb info).
type InfoRequest struct {
	// V is the protocol version, Version.
	V int `json:"v"`
	// Pipeline names the pipeline.
	Pipeline string `json:"pipeline"`
	// Asset names the asset.
	Asset string `json:"asset"`
}

// Verb returns VerbInfo.
func (InfoRequest) Verb() string { return VerbInfo }
func (InfoRequest) isRequest()   {}

// Validate checks the version and names.
func (r InfoRequest) Validate() *Error { return checkTarget(r.V, r.Pipeline, r.Asset, "") }

// InfoReply answers an InfoRequest: the asset's spec as its workers'
// manifests declare it.
type InfoReply struct {
	AssetSpec
}

func (InfoReply) isReply() {}

// Validate checks the spec.
func (r InfoReply) Validate() *Error { return r.AssetSpec.validate("") }

// PipelinesRequest lists the pipelines the fleet hosts (verb pipelines).
type PipelinesRequest struct {
	// V is the protocol version, Version.
	V int `json:"v"`
}

// Verb returns VerbPipelines.
func (PipelinesRequest) Verb() string { return VerbPipelines }
func (PipelinesRequest) isRequest()   {}

// Validate checks the version.
func (r PipelinesRequest) Validate() *Error { return checkVersion(r.V) }

// PipelinesReply answers a PipelinesRequest.
type PipelinesReply struct {
	// Pipelines describes each hosted pipeline.
	Pipelines []PipelineSummary `json:"pipelines"`
}

func (PipelinesReply) isReply() {}

// Validate checks every summary and refuses repeated names.
func (r PipelinesReply) Validate() *Error {
	seen := make(map[string]bool, len(r.Pipelines))
	for i, p := range r.Pipelines {
		field := indexed("pipelines", i)
		if err := checkName(field+".name", p.Name); err != nil {
			return err
		}
		if seen[p.Name] {
			return fieldErrorf(field+".name", "%s.name repeats %q", field, p.Name)
		}
		seen[p.Name] = true
		if err := checkNonNegative(field+".assets", p.Assets); err != nil {
			return err
		}
		if err := checkNonNegative(field+".workers", p.Workers); err != nil {
			return err
		}
	}
	return nil
}

// PipelineSummary describes one hosted pipeline.
type PipelineSummary struct {
	// Name names the pipeline.
	Name string `json:"name"`
	// Assets is the number of assets in it.
	Assets int `json:"assets"`
	// Workers is the number of workers hosting it.
	Workers int `json:"workers"`
}

func checkPipeline(v int, pipeline string) *Error {
	if err := checkVersion(v); err != nil {
		return err
	}
	return checkName("pipeline", pipeline)
}
