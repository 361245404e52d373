package protocol

import "time"

// Manifest is what a worker hosts of one pipeline: the asset specs a
// coordinator plans from, so coordinators never need the user's Go
// functions. Each worker puts one per pipeline in ManifestsBucket under
// ManifestKey(pipeline, worker), and refreshes it while it runs.
type Manifest struct {
	// V is the protocol version, Version.
	V int `json:"v"`
	// Pipeline names the pipeline.
	Pipeline string `json:"pipeline"`
	// Assets are the pipeline's assets, in the pipeline's order; every
	// dependency names one of them.
	Assets []AssetSpec `json:"assets"`
	// Worker is the id of the worker that hosts it.
	Worker string `json:"worker"`
	// Storages names the result stores the worker writes to, sorted, at
	// most MaxStorages; coordinators refuse a run whose storage is not
	// among those of every worker hosting the pipeline. Empty: not told
	// (such a worker is not asked).
	Storages []string `json:"storages,omitempty"`
	// Schedules are the pipeline's schedules, in declaration order.
	Schedules []ScheduleSpec `json:"schedules,omitempty"`
	// Sensors are the pipeline's sensors, in declaration order; the
	// workers evaluate them (SensorSubject).
	Sensors []SensorSpec `json:"sensors,omitempty"`
	// UpdatedAt is when the worker last wrote the manifest.
	UpdatedAt time.Time `json:"updated_at"`
}

// MaxStorages is the most store names a manifest lists.
const MaxStorages = 64

// Validate checks the manifest: names, ids, every spec, no repeated asset,
// and no dependency outside the manifest. (Cycles are the library's to
// refuse when the pipeline is defined.)
func (m Manifest) Validate() *Error {
	if err := checkPipeline(m.V, m.Pipeline); err != nil {
		return err
	}
	if len(m.Assets) == 0 {
		return fieldErrorf("assets", "assets is empty: a pipeline has at least one asset")
	}
	index := make(map[string]bool, len(m.Assets))
	for i, a := range m.Assets {
		prefix := indexed("assets", i) + "."
		if err := a.validate(prefix); err != nil {
			return err
		}
		if index[a.Name] {
			return fieldErrorf(prefix+"name", "%sname repeats %q", prefix, a.Name)
		}
		index[a.Name] = true
	}
	for i, a := range m.Assets {
		for _, l := range a.depLists() {
			for j, d := range l.deps {
				if !index[d] {
					f := indexed(indexed("assets", i)+"."+l.field, j)
					return fieldErrorf(f, "%s names %q, which is not an asset of pipeline %s", f, d, m.Pipeline)
				}
			}
		}
		for j, b := range a.Branches {
			if !index[b.Asset] {
				f := indexed(indexed("assets", i)+".branches", j) + ".asset"
				return fieldErrorf(f, "%s names %q, which is not an asset of pipeline %s", f, b.Asset, m.Pipeline)
			}
		}
		for j, r := range a.Route {
			if !index[r] {
				f := indexed(indexed("assets", i)+".route", j)
				return fieldErrorf(f, "%s names %q, which is not an asset of pipeline %s", f, r, m.Pipeline)
			}
		}
	}
	if err := m.validateAutomation(index); err != nil {
		return err
	}
	if err := checkID("worker", m.Worker); err != nil {
		return err
	}
	if len(m.Storages) > MaxStorages {
		return fieldErrorf("storages", "storages lists %d stores, more than %d", len(m.Storages), MaxStorages)
	}
	if err := checkNames("storages", m.Storages); err != nil {
		return err
	}
	return checkTime("updated_at", m.UpdatedAt)
}

// EncodeManifest validates m and encodes it.
func EncodeManifest(m Manifest) ([]byte, *Error) { return encodeValid(m, MaxMessageBytes) }

// DecodeManifest decodes and validates a manifest, with the rules of
// DecodeRequest and MaxMessageBytes.
func DecodeManifest(data []byte) (Manifest, *Error) {
	return decodeValid[Manifest](data, MaxMessageBytes)
}

// AssetSpec describes an asset as its definition declares it.
type AssetSpec struct {
	// Name names the asset.
	Name string `json:"name"`
	// DependsOn names the assets it needs, in declaration order.
	DependsOn []string `json:"depends_on,omitempty"`
	// OptionalDeps names the assets it uses when they are materialized.
	OptionalDeps []string `json:"optional_deps,omitempty"`
	// Description says what it is.
	Description string `json:"description,omitempty"`
	// PartitionedBy names its partitioning ("date", "hour", ...); "" means
	// unpartitioned.
	PartitionedBy string `json:"partitioned_by,omitempty"`
	// TimeoutMS bounds one execution, in milliseconds; 0 means the default.
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
	// Retries is how many times a failed execution is retried.
	Retries int `json:"retries,omitempty"`
	// Storage names its storage backend; "" means the default.
	Storage string `json:"storage,omitempty"`
	// Scatter is true for an asset that fans out over items.
	Scatter bool `json:"scatter,omitempty"`
	// Parallel is true for an asset that joins parallel branches: Branches
	// lists them. (Before Version 1 settled, it marked a scatter running
	// more than one item at once; such a spec has no Branches, and
	// coordinators ignore the flag then.)
	Parallel bool `json:"parallel,omitempty"`
	// Branches are the parallel branches the asset joins, by name order;
	// their end assets are dependencies of the asset besides DependsOn and
	// OptionalDeps. (Added within Version 1, as are JoinMode,
	// JoinTimeoutMS and Route: a peer that predates them refuses a
	// manifest or info reply that has them.)
	Branches []BranchSpec `json:"branches,omitempty"`
	// JoinMode is how the asset joins its branches: JoinAllOrNothing or
	// JoinPartial; set exactly when Branches is.
	JoinMode string `json:"join_mode,omitempty"`
	// JoinTimeoutMS bounds the branches together, from when the first
	// starts, in milliseconds; 0 means no bound.
	JoinTimeoutMS int64 `json:"join_timeout_ms,omitempty"`
	// Route lists a router's branches in the order its conditions are
	// tried, its default last; each is an asset that depends on the
	// router. The conditions are code: they stay with the workers.
	Route []string `json:"route,omitempty"`
	// HasApproval is true for an asset that waits for an approval before
	// it runs.
	HasApproval bool `json:"has_approval,omitempty"`
	// ApprovalMessage is its approval gate's question.
	ApprovalMessage string `json:"approval_message,omitempty"`
	// ApprovalContext is its approval gate's facts for the approver.
	ApprovalContext map[string]any `json:"approval_context,omitempty"`
	// HasSignal is true for an asset that waits for a signal before it
	// runs.
	HasSignal bool `json:"has_signal,omitempty"`
	// SignalOnTimeout is true when its signal gate's declaration makes a
	// value on the gate's expiry (else expiry fails it).
	SignalOnTimeout bool `json:"signal_on_timeout,omitempty"`
	// GateTimeoutMS is how long its gate waits, in milliseconds (0: no
	// gate).
	GateTimeoutMS int64 `json:"gate_timeout_ms,omitempty"`
}

func (a AssetSpec) validate(prefix string) *Error {
	if err := checkName(prefix+"name", a.Name); err != nil {
		return err
	}
	if err := checkNames(prefix+"depends_on", a.DependsOn); err != nil {
		return err
	}
	if err := checkNames(prefix+"optional_deps", a.OptionalDeps); err != nil {
		return err
	}
	for _, l := range a.depLists() {
		for j, d := range l.deps {
			if d == a.Name {
				f := indexed(prefix+l.field, j)
				return fieldErrorf(f, "%s names the asset itself", f)
			}
		}
	}
	required := make(map[string]bool, len(a.DependsOn))
	for _, d := range a.DependsOn {
		required[d] = true
	}
	for j, d := range a.OptionalDeps {
		if required[d] {
			f := indexed(prefix+"optional_deps", j)
			return fieldErrorf(f, "%s names %q, which depends_on already names", f, d)
		}
	}
	if err := checkText(prefix+"description", a.Description); err != nil {
		return err
	}
	if err := checkOptionalName(prefix+"partitioned_by", a.PartitionedBy); err != nil {
		return err
	}
	if err := checkNonNegative(prefix+"timeout_ms", a.TimeoutMS); err != nil {
		return err
	}
	if err := checkNonNegative(prefix+"retries", a.Retries); err != nil {
		return err
	}
	if err := a.validateJoin(prefix); err != nil {
		return err
	}
	if err := checkNames(prefix+"route", a.Route); err != nil {
		return err
	}
	for j, r := range a.Route {
		if r == a.Name {
			f := indexed(prefix+"route", j)
			return fieldErrorf(f, "%s names the asset itself", f)
		}
	}
	if err := checkText(prefix+"approval_message", a.ApprovalMessage); err != nil {
		return err
	}
	if err := checkNonNegative(prefix+"gate_timeout_ms", a.GateTimeoutMS); err != nil {
		return err
	}
	if a.HasApproval && a.HasSignal {
		return fieldErrorf(prefix+"has_signal", "%shas_approval and %shas_signal are exclusive: an asset has one gate", prefix, prefix)
	}
	return checkOptionalName(prefix+"storage", a.Storage)
}

// The join modes of AssetSpec.JoinMode.
const (
	// JoinAllOrNothing: every branch must succeed.
	JoinAllOrNothing = "all_or_nothing"
	// JoinPartial: the optional branches may fail.
	JoinPartial = "partial"
)

// BranchSpec is one parallel branch an asset joins.
type BranchSpec struct {
	// Name names the branch.
	Name string `json:"name"`
	// Asset is the asset the branch ends in.
	Asset string `json:"asset"`
	// Optional is true for a branch a partial join can do without.
	Optional bool `json:"optional,omitempty"`
}

// validateJoin checks the spec's branches and how it joins them.
func (a AssetSpec) validateJoin(prefix string) *Error {
	if len(a.Branches) == 0 {
		if a.JoinMode != "" {
			return fieldErrorf(prefix+"join_mode", "%sjoin_mode is set but the asset joins no branches", prefix)
		}
		if a.JoinTimeoutMS != 0 {
			return fieldErrorf(prefix+"join_timeout_ms", "%sjoin_timeout_ms is set but the asset joins no branches", prefix)
		}
		return nil
	}
	if !a.Parallel {
		return fieldErrorf(prefix+"parallel", "%sparallel is false but the asset joins branches", prefix)
	}
	switch a.JoinMode {
	case JoinAllOrNothing, JoinPartial:
	default:
		return fieldErrorf(prefix+"join_mode", "%sjoin_mode is %s; it must be %q or %q", prefix, quote(a.JoinMode), JoinAllOrNothing, JoinPartial)
	}
	if err := checkNonNegative(prefix+"join_timeout_ms", a.JoinTimeoutMS); err != nil {
		return err
	}
	names := make(map[string]bool, len(a.Branches))
	ends := make(map[string]bool, len(a.Branches))
	optional := 0
	for i, b := range a.Branches {
		f := indexed(prefix+"branches", i)
		if err := checkName(f+".name", b.Name); err != nil {
			return err
		}
		if err := checkName(f+".asset", b.Asset); err != nil {
			return err
		}
		switch {
		case names[b.Name]:
			return fieldErrorf(f+".name", "%s.name repeats %q", f, b.Name)
		case ends[b.Asset]:
			return fieldErrorf(f+".asset", "%s.asset repeats %q: each branch ends in an asset of its own", f, b.Asset)
		case b.Asset == a.Name:
			return fieldErrorf(f+".asset", "%s.asset names the asset itself", f)
		case i > 0 && b.Name < a.Branches[i-1].Name:
			return fieldErrorf(f+".name", "%s.name %q comes before %q: branches are in name order", f, b.Name, a.Branches[i-1].Name)
		}
		names[b.Name], ends[b.Asset] = true, true
		if b.Optional {
			optional++
		}
	}
	if (optional > 0) != (a.JoinMode == JoinPartial) {
		return fieldErrorf(prefix+"join_mode", "%sjoin_mode %s takes optional branches exactly when it is %q", prefix, quote(a.JoinMode), JoinPartial)
	}
	for _, l := range a.depLists() {
		for j, d := range l.deps {
			if ends[d] {
				f := indexed(prefix+l.field, j)
				return fieldErrorf(f, "%s names %q, which a branch ends in already", f, d)
			}
		}
	}
	return nil
}

// depLists pairs each dependency list with its JSON name, in a fixed order
// so the first problem reported is always the same one.
func (a AssetSpec) depLists() []struct {
	field string
	deps  []string
} {
	return []struct {
		field string
		deps  []string
	}{{"depends_on", a.DependsOn}, {"optional_deps", a.OptionalDeps}}
}

// MaxAutomations is the most schedules and sensors a manifest lists.
const MaxAutomations = 256

// validateAutomation checks the schedules and sensors: their specs,
// names unique among both, and assets of the pipeline.
func (m Manifest) validateAutomation(assets map[string]bool) *Error {
	if len(m.Schedules)+len(m.Sensors) > MaxAutomations {
		return fieldErrorf("schedules", "schedules and sensors are %d, more than %d", len(m.Schedules)+len(m.Sensors), MaxAutomations)
	}
	names := map[string]bool{}
	for i, s := range m.Schedules {
		prefix := indexed("schedules", i) + "."
		if err := s.validate(prefix); err != nil {
			return err
		}
		if names[s.Name] {
			return fieldErrorf(prefix+"name", "%sname repeats %q", prefix, s.Name)
		}
		names[s.Name] = true
		for j, a := range s.Assets {
			if !assets[a] {
				f := indexed(prefix+"assets", j)
				return fieldErrorf(f, "%s names %q, which is not an asset of pipeline %s", f, a, m.Pipeline)
			}
		}
	}
	for i, s := range m.Sensors {
		prefix := indexed("sensors", i) + "."
		if err := s.validate(prefix); err != nil {
			return err
		}
		if names[s.Name] {
			return fieldErrorf(prefix+"name", "%sname repeats %q", prefix, s.Name)
		}
		names[s.Name] = true
	}
	return nil
}
