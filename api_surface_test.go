package flowstone_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"slices"
	"strings"
	"testing"
)

// TestAPISurface pins the root package's API: every exported name of its
// source (functions, types, methods, struct fields, interface methods,
// constants and variables) must be in apiNames, and every name there must
// exist. Adding to the API is a promise: add the name to apiNames on
// purpose. Machinery that only the fleet's packages need belongs in
// internal/bridge (see docs/ARCHITECTURE.md, "The API and the bridge").
func TestAPISurface(t *testing.T) {
	got := exportedNames(t, ".")
	for _, name := range got {
		if slices.Contains(plumbingNames, name) {
			t.Errorf("%s is exported again: it is the fleet's plumbing, reached through internal/bridge, not the user's API", name)
		}
	}
	want := slices.Sorted(slices.Values(apiNames))
	if added, removed := diffSorted(got, want); len(added)+len(removed) > 0 {
		t.Errorf("the root package's exported names changed:\n  new, not in apiNames: %v\n  in apiNames, gone: %v\n"+
			"add a new name to apiNames only if it is meant for users (and keep it out of plumbingNames)", added, removed)
	}
}

// exportedNames lists the exported names of the non-test Go files in dir:
// "Name" for a top-level name, "Type.Name" for a method or a field of an
// exported type. It is sorted.
func exportedNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	fset := token.NewFileSet()
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, dir+"/"+e.Name(), nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if !d.Name.IsExported() {
					continue
				}
				if d.Recv == nil {
					names = append(names, d.Name.Name)
				} else if recv := receiverName(d.Recv.List[0].Type); ast.IsExported(recv) {
					names = append(names, recv+"."+d.Name.Name)
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						if s.Name.IsExported() {
							names = append(names, s.Name.Name)
							names = append(names, memberNames(s.Name.Name, s.Type)...)
						}
					case *ast.ValueSpec:
						for _, n := range s.Names {
							if n.IsExported() {
								names = append(names, n.Name)
							}
						}
					}
				}
			}
		}
	}
	slices.Sort(names)
	return names
}

// receiverName is the type name of a method's receiver.
func receiverName(x ast.Expr) string {
	for {
		switch e := x.(type) {
		case *ast.StarExpr:
			x = e.X
		case *ast.IndexExpr:
			x = e.X
		case *ast.IndexListExpr:
			x = e.X
		case *ast.ParenExpr:
			x = e.X
		case *ast.Ident:
			return e.Name
		default:
			return ""
		}
	}
}

// memberNames lists the exported fields of a struct type and the exported
// methods of an interface type, as "Type.Name".
func memberNames(typ string, x ast.Expr) []string {
	var fields *ast.FieldList
	switch e := x.(type) {
	case *ast.StructType:
		fields = e.Fields
	case *ast.InterfaceType:
		fields = e.Methods
	default:
		return nil
	}
	var names []string
	for _, f := range fields.List {
		for _, n := range f.Names {
			if n.IsExported() {
				names = append(names, typ+"."+n.Name)
			}
		}
		if len(f.Names) == 0 { // embedded
			if n := receiverName(f.Type); ast.IsExported(n) {
				names = append(names, typ+"."+n)
			}
		}
	}
	return names
}

// diffSorted returns the names of got missing from want, and of want
// missing from got.
func diffSorted(got, want []string) (added, removed []string) {
	for _, n := range got {
		if _, ok := slices.BinarySearch(want, n); !ok {
			added = append(added, n)
		}
	}
	for _, n := range want {
		if _, ok := slices.BinarySearch(got, n); !ok {
			removed = append(removed, n)
		}
	}
	return added, removed
}

// plumbingNames were exported by the root package for the fleet's
// packages only; they live in internal/bridge now and must not come back.
var plumbingNames = []string{
	"BackfillRequest", "DepRef", "Dispatcher", "Engine.Executor", "EngineConfig.Dispatcher",
	"ErrHandedBack", "ErrSuperseded", "Error.WireError", "Executor", "ExecutorConfig", "FromWire",
	"GetRequest", "HeldBy", "InvalidateRequest", "LeaseDefault", "LeaseSkew", "MarshalRecord",
	"MaterializationKey", "Materialized", "NewExecutor", "NewRecords", "NewResult", "ObjectKey",
	"Pipeline.Manifest", "PipelineFromManifest", "QueueOutcome", "QueueRequest", "Queued", "Records",
	"Requeued", "ResolveBackfill", "ResolveGet", "ResolveGraph", "ResolveInvalidate", "ResolveRun",
	"RunningRecordDelay", "StaleHolderDetail", "StatusOf", "StorageChecker", "Task", "Task.Planned",
	"UnmarshalRecord",
}

// apiNames is the root package's API, one exported name a line.
var apiNames = []string{
	"ASCII",
	"AllPartitions",
	"AnyKey",
	"Approval",
	"ApprovalConfig",
	"ApprovalConfig.Context",
	"ApprovalConfig.Message",
	"ApprovalConfig.Timeout",
	"Approvals",
	"Approve",
	"ApproveOption",
	"AsError",
	"Asset",
	"AssetDef",
	"AssetDef.Name",
	"AssetFunc",
	"AssetInfo",
	"AssetOption",
	"Assets",
	"Async",
	"AsyncRunner",
	"AsyncRunner.Enqueue",
	"Automation",
	"Backfill",
	"BackfillID",
	"BackfillOption",
	"BackfillProgress",
	"BackfillProgress.Done",
	"BackfillProgress.Err",
	"BackfillProgress.Partition",
	"BackfillProgress.Stats",
	"BackfillProgress.Total",
	"BackfillStats",
	"BackfillStats.Errors",
	"BackfillStats.Failed",
	"BackfillStats.ID",
	"BackfillStats.NotStarted",
	"BackfillStats.NotStartedPartitions",
	"BackfillStats.Skipped",
	"BackfillStats.Succeeded",
	"Cancel",
	"Cascade",
	"CatchUp",
	"CatchUpAll",
	"CatchUpGrace",
	"CatchUpLatest",
	"CatchUpNone",
	"CatchUpPolicy",
	"CatchUpPolicy.String",
	"Codec",
	"Codec.Decode",
	"Codec.Encode",
	"Context",
	"Context.Asset",
	"Context.Attempt",
	"Context.Context",
	"Context.HasDep",
	"Context.Logger",
	"Context.Partition",
	"Context.Pipeline",
	"Context.RunID",
	"Context.ScatterItem",
	"Continue",
	"DOT",
	"Daily",
	"DateLayout",
	"DatePartition",
	"DateRange",
	"Dates",
	"Default",
	"DefaultGateTimeout",
	"DefaultPartition",
	"DefaultRunTimeout",
	"DefaultSensorTimeout",
	"Dep",
	"DependsOn",
	"Description",
	"EncodingJSON",
	"EncodingRaw",
	"Engine",
	"Engine.Approvals",
	"Engine.Approve",
	"Engine.Backfill",
	"Engine.Cancel",
	"Engine.Close",
	"Engine.Exists",
	"Engine.Get",
	"Engine.Invalidate",
	"Engine.PauseAutomation",
	"Engine.Reject",
	"Engine.ResumeAutomation",
	"Engine.Run",
	"Engine.Schedules",
	"Engine.Seed",
	"Engine.Sensors",
	"Engine.Signal",
	"Engine.StartAutomation",
	"Engine.Status",
	"Engine.Stop",
	"Engine.Subscribe",
	"Engine.Validate",
	"EngineConfig",
	"EngineConfig.Async",
	"EngineConfig.Codec",
	"EngineConfig.Concurrency",
	"EngineConfig.DefaultStorage",
	"EngineConfig.KV",
	"EngineConfig.Logger",
	"EngineConfig.SignalSecret",
	"EngineConfig.Stores",
	"ErrAssetNotFound",
	"ErrBadRequest",
	"ErrCancelled",
	"ErrConfig",
	"ErrDependencyFailed",
	"ErrExecutionFailed",
	"ErrInternal",
	"ErrNotFound",
	"ErrPipelineNotFound",
	"ErrRejected",
	"ErrScatterThreshold",
	"ErrStorage",
	"ErrTimeout",
	"ErrUnavailable",
	"Error",
	"Error.Details",
	"Error.Error",
	"Error.Is",
	"Error.Message",
	"Error.Type",
	"Error.Unwrap",
	"ErrorPolicy",
	"ErrorPolicy.String",
	"ErrorType",
	"ErrorType.String",
	"Event",
	"Event.Asset",
	"Event.Duration",
	"Event.Err",
	"Event.Kind",
	"Event.Metadata",
	"Event.Partition",
	"Event.Pipeline",
	"Event.RunID",
	"Event.Time",
	"EventGateApproved",
	"EventGateExpired",
	"EventGateRejected",
	"EventGateSignalled",
	"EventGateWait",
	"EventKind",
	"EventRunException",
	"EventRunStart",
	"EventRunStop",
	"EventScatterItemStart",
	"EventScatterItemStop",
	"EventScatterStart",
	"EventScatterStop",
	"EventStorageLoadStart",
	"EventStorageLoadStop",
	"EventStoreStart",
	"EventStoreStop",
	"Exists",
	"FixedKey",
	"Force",
	"Format",
	"Gate",
	"Gate.Context",
	"Gate.Deadline",
	"Gate.DecidedAt",
	"Gate.Decision",
	"Gate.Kind",
	"Gate.Message",
	"Gate.OpenedAt",
	"Gate.Payload",
	"Gate.Reason",
	"GateApproval",
	"GateApproved",
	"GateDecision",
	"GateExpired",
	"GateKind",
	"GateRejected",
	"GateSignal",
	"GateSignalled",
	"Get",
	"GetOption",
	"Graph",
	"GraphFormat",
	"GraphFormat.String",
	"GraphOption",
	"Halt",
	"HourLayout",
	"HourPartition",
	"Hourly",
	"Hours",
	"InTimeZone",
	"Info",
	"Info.DependsOn",
	"Info.Description",
	"Info.HasApproval",
	"Info.HasSignal",
	"Info.Name",
	"Info.OptionalDeps",
	"Info.Parallel",
	"Info.PartitionedBy",
	"Info.Scatter",
	"InlineLimit",
	"InlineStorage",
	"Invalidate",
	"InvalidateOption",
	"JSONCodec",
	"JSONCodec.Decode",
	"JSONCodec.Encode",
	"Job",
	"Job.Asset",
	"Job.ID",
	"Job.Partition",
	"Job.Pipeline",
	"Job.Priority",
	"Job.ScheduledAt",
	"Job.State",
	"JoinPartition",
	"Lineage",
	"Lineage.Asset",
	"Lineage.Partition",
	"Lineage.RunID",
	"MapTick",
	"Materialization",
	"Materialization.Asset",
	"Materialization.Attempt",
	"Materialization.CompletedAt",
	"Materialization.DurationMS",
	"Materialization.Error",
	"Materialization.Gate",
	"Materialization.LeaseUntil",
	"Materialization.Materialized",
	"Materialization.Partition",
	"Materialization.Pipeline",
	"Materialization.QueuedBy",
	"Materialization.RunID",
	"Materialization.Scatter",
	"Materialization.StartedAt",
	"Materialization.State",
	"Materialization.Value",
	"Materialization.Worker",
	"MaxCatchUp",
	"MaxCursorLen",
	"MaxDateRangeDays",
	"MaxListedNotStarted",
	"MaxParallel",
	"MaxPartitionLen",
	"MaxReasonLen",
	"MaxRunKeyLen",
	"MaxScatterItemLen",
	"MaxScatterItems",
	"MaxSensorRuns",
	"MaxSignalPayload",
	"Mermaid",
	"MinSensorInterval",
	"MustEngine",
	"MustPipeline",
	"NewEngine",
	"NewPipeline",
	"OnError",
	"OnProgress",
	"OptionalDeps",
	"Parallel",
	"ParseDateRange",
	"ParseGraphFormat",
	"Partition",
	"PartitionOption",
	"PartitionOption.ApproveOption",
	"PartitionOption.GetOption",
	"PartitionOption.InvalidateOption",
	"PartitionOption.RunOption",
	"PartitionToken",
	"PartitionedBy",
	"Partitioning",
	"Partitioning.Kind",
	"Partitioning.Validate",
	"Partitions",
	"PartitionsOption",
	"PartitionsOption.BackfillOption",
	"PartitionsOption.InvalidateOption",
	"Pipeline",
	"Pipeline.Approvals",
	"Pipeline.Approve",
	"Pipeline.AssetInfo",
	"Pipeline.Assets",
	"Pipeline.Automate",
	"Pipeline.Backfill",
	"Pipeline.Cancel",
	"Pipeline.Exists",
	"Pipeline.Get",
	"Pipeline.Graph",
	"Pipeline.Invalidate",
	"Pipeline.MustAutomate",
	"Pipeline.Name",
	"Pipeline.Reject",
	"Pipeline.Run",
	"Pipeline.ScheduleNames",
	"Pipeline.SensorNames",
	"Pipeline.Status",
	"PreviousDay",
	"PreviousHour",
	"Priority",
	"Reason",
	"Reject",
	"Result",
	"Result.Asset",
	"Result.Bytes",
	"Result.Cached",
	"Result.Decode",
	"Result.Job",
	"Result.Open",
	"Result.Partition",
	"Result.Record",
	"Result.RunID",
	"Retry",
	"RetryPolicy",
	"RetryPolicy.Attempts",
	"RetryPolicy.Backoff",
	"Run",
	"RunBackfillOption",
	"RunBackfillOption.BackfillOption",
	"RunBackfillOption.RunOption",
	"RunOption",
	"RunRequest",
	"RunRequest.Asset",
	"RunRequest.Async",
	"RunRequest.Force",
	"RunRequest.Partition",
	"RunRequest.Pipeline",
	"RunRequest.Priority",
	"RunRequest.RunID",
	"RunRequest.ScheduledAt",
	"RunRequest.Storage",
	"RunRequest.Timeout",
	"RunRequest.WithDeps",
	"SameDay",
	"SameHour",
	"Scatter",
	"ScatterConfig",
	"ScatterConfig.MaxFailureRate",
	"ScatterConfig.MaxFailures",
	"ScatterConfig.Parallel",
	"ScatterFunc",
	"ScatterStatus",
	"ScatterStatus.Cancelled",
	"ScatterStatus.Completed",
	"ScatterStatus.Failed",
	"ScatterStatus.Pending",
	"ScatterStatus.Total",
	"ItemReader",
	"ItemReader.Close",
	"ItemReader.Open",
	"ItemReader.Read",
	"ScatterFrom",
	"Batching",
	"Batching.GroupBy",
	"Batching.MaxBytes",
	"Batching.MaxItems",
	"Batching.Size",
	"Context.ScatterBatch",
	"ScatterBatch",
	"ScatterBatch.Count",
	"ScatterBatch.Index",
	"ScatterBatch.Items",
	"ScatterConfig.Batching",
	"ItemBackoffDefault",
	"ItemMaxBackoffDefault",
	"MaxListedFailures",
	"MaxScatterBatch",
	"ScatterConfig.BatchSize",
	"ScatterConfig.ItemBackoff",
	"ScatterConfig.ItemMaxBackoff",
	"ScatterConfig.ItemRetries",
	"ScatterConfig.Rate",
	"ScatterFailure",
	"ScatterFailure.Error",
	"ScatterFailure.Item",
	"ScatterParallelDefault",
	"ScatterStatus.FailedItems",
	"Schedule",
	"ScheduleDef",
	"ScheduleOption",
	"ScheduleStatus",
	"ScheduleStatus.Assets",
	"ScheduleStatus.CatchUp",
	"ScheduleStatus.Cron",
	"ScheduleStatus.Error",
	"ScheduleStatus.Fired",
	"ScheduleStatus.LastPartition",
	"ScheduleStatus.LastRuns",
	"ScheduleStatus.LastTick",
	"ScheduleStatus.Mapping",
	"ScheduleStatus.Name",
	"ScheduleStatus.NextTick",
	"ScheduleStatus.Paused",
	"ScheduleStatus.Pipeline",
	"ScheduleStatus.Skipped",
	"ScheduleStatus.TimeZone",
	"ScheduledAt",
	"SeedRunID",
	"Select",
	"Selection",
	"Sensor",
	"SensorContext",
	"SensorContext.Context",
	"SensorContext.Logger",
	"SensorContext.Now",
	"SensorContext.Pipeline",
	"SensorContext.Sensor",
	"SensorDef",
	"SensorFunc",
	"SensorOption",
	"SensorResult",
	"SensorResult.Cursor",
	"SensorResult.Runs",
	"SensorRun",
	"SensorRun.Asset",
	"SensorRun.Partition",
	"SensorRun.RunKey",
	"SensorStatus",
	"SensorStatus.Cursor",
	"SensorStatus.Error",
	"SensorStatus.Evaluations",
	"SensorStatus.Failures",
	"SensorStatus.IntervalMS",
	"SensorStatus.LastEvaluation",
	"SensorStatus.LastRuns",
	"SensorStatus.LastSuccess",
	"SensorStatus.Name",
	"SensorStatus.NextEvaluation",
	"SensorStatus.Paused",
	"SensorStatus.Pipeline",
	"SignalConfig",
	"SignalConfig.OnSignal",
	"SignalConfig.OnTimeout",
	"SignalConfig.Timeout",
	"State",
	"State.String",
	"State.Terminal",
	"State.Waiting",
	"StateCancelled",
	"StateCompleted",
	"StateFailed",
	"StateNotFound",
	"StatePending",
	"StateRunning",
	"StateScheduled",
	"StateWaitingApproval",
	"StateWaitingSignal",
	"Static",
	"Status",
	"StatusInfo",
	"StatusInfo.CompletedAt",
	"StatusInfo.DurationMS",
	"StatusInfo.Error",
	"StatusInfo.Gate",
	"StatusInfo.Partition",
	"StatusInfo.RunID",
	"StatusInfo.Scatter",
	"StatusInfo.ScheduledAt",
	"StatusInfo.State",
	"StatusInfo.Storage",
	"StatusInfo.Value",
	"Storage",
	"StorageOf",
	"StorageOption",
	"StorageOption.GetOption",
	"StorageOption.RunOption",
	"TickMapping",
	"TickMapping.String",
	"Timeout",
	"TimeoutOption",
	"TimeoutOption.AssetOption",
	"TimeoutOption.BackfillOption",
	"TimeoutOption.RunOption",
	"TimeoutOption.SensorOption",
	"TypeAssetNotFound",
	"TypeBadRequest",
	"TypeCancelled",
	"TypeConfigError",
	"TypeDependencyFailed",
	"TypeExecutionFailed",
	"TypeInternal",
	"TypeNotFound",
	"TypePipelineNotFound",
	"TypeRejected",
	"TypeScatterThreshold",
	"TypeStorageError",
	"TypeTimeout",
	"TypeUnavailable",
	"Value",
	"Value.CompletedAt",
	"Value.DurationMS",
	"Value.Encoding",
	"Value.Inline",
	"Value.ObjectKey",
	"Value.RunID",
	"Value.SHA256",
	"Value.Size",
	"Value.Storage",
	"Value.Upstream",
	"ValueInfo",
	"ValueInfo.CompletedAt",
	"ValueInfo.RunID",
	"ValueInfo.Size",
	"ValueInfo.Storage",
	"WaitForSignal",
	"WaitingGate",
	"WaitingGate.Asset",
	"WaitingGate.Context",
	"WaitingGate.Deadline",
	"WaitingGate.Kind",
	"WaitingGate.Message",
	"WaitingGate.OpenedAt",
	"WaitingGate.Partition",
	"WaitingGate.Pipeline",
	"WaitingGate.RunID",
	"WaitingGate.Token",
	"WithDeps",
	"WithRunID",
	// Parallel branches (Join) and conditional routing (Route).
	"AllOrNothing",
	"BranchResult",
	"BranchResult.Asset",
	"BranchResult.Branch",
	"BranchResult.Decode",
	"BranchResult.Err",
	"BranchResult.OK",
	"BranchResult.Skipped",
	"Branches",
	"Condition",
	"Context.Branches",
	"ErrSkipped",
	"EventRunSkipped",
	"Info.Branches",
	"Info.Join",
	"Info.Route",
	"Join",
	"JoinConfig",
	"JoinConfig.Mode",
	"JoinConfig.Optional",
	"JoinConfig.Timeout",
	"JoinMode",
	"Materialization.Skip",
	"Otherwise",
	"Partial",
	"Route",
	"RouteCase",
	"Skip",
	"Skip.Chosen",
	"Skip.Dependency",
	"Skip.Router",
	"Skip.String",
	"StateSkipped",
	"StatusInfo.Route",
	"StatusInfo.Skip",
	"TypeSkipped",
	"When",
}
