package flowstone

import (
	"context"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/robfig/cron/v3"
	"github.com/rs/zerolog"
)

// Automation is a schedule (Schedule) or a sensor (Sensor): something that
// starts runs of a pipeline's assets by itself. Declare them on a pipeline
// with Pipeline.Automate; an engine runs them once its StartAutomation is
// called, a fleet's coordinators once a worker hosting the pipeline has
// published its manifest.
type Automation interface{ automation() }

// Automate returns a copy of p with the schedules and sensors defs
// declared on it (p itself is left as it was). It checks each one and
// reports, as a ConfigError naming the culprit: a bad or repeated name
// (schedules and sensors share the pipeline's names), an invalid cron
// expression or time zone, a selection naming an asset that is not in
// the pipeline (an AssetNotFound error), a partition mapping the target
// cannot take, a sensor without a function, or an interval below
// MinSensorInterval. A pipeline with a bad definition is not built, so a
// bad schedule never fires.
func (p *Pipeline) Automate(defs ...Automation) (*Pipeline, error) {
	q := *p
	q.schedules = slices.Clone(p.schedules)
	q.sensors = slices.Clone(p.sensors)
	taken := map[string]bool{}
	for _, s := range q.schedules {
		taken[s.def.name] = true
	}
	for _, s := range q.sensors {
		taken[s.def.name] = true
	}
	for _, d := range defs {
		var name string
		switch d := d.(type) {
		case ScheduleDef:
			name = d.name
		case SensorDef:
			name = d.name
		default:
			return nil, newError(TypeConfigError, map[string]any{"pipeline": p.name}, "pipeline %s: %T is not a schedule or a sensor", p.name, d)
		}
		if err := validName("schedule or sensor", name); err != nil {
			return nil, err
		}
		if taken[name] {
			return nil, newError(TypeConfigError, map[string]any{"pipeline": p.name, "name": name},
				"pipeline %s declares %q twice: schedules and sensors need names of their own", p.name, name)
		}
		taken[name] = true
		switch d := d.(type) {
		case ScheduleDef:
			s, err := p.compileSchedule(d)
			if err != nil {
				return nil, err
			}
			q.schedules = append(q.schedules, s)
		case SensorDef:
			s, err := p.compileSensor(d)
			if err != nil {
				return nil, err
			}
			q.sensors = append(q.sensors, s)
		}
	}
	return &q, nil
}

// MustAutomate is Automate that panics on a bad definition, for
// package-level pipelines.
func (p *Pipeline) MustAutomate(defs ...Automation) *Pipeline {
	q, err := p.Automate(defs...)
	if err != nil {
		panic(err)
	}
	return q
}

// ScheduleNames lists the pipeline's schedules, in declaration order.
func (p *Pipeline) ScheduleNames() []string {
	out := make([]string, len(p.schedules))
	for i, s := range p.schedules {
		out[i] = s.def.name
	}
	return out
}

// SensorNames lists the pipeline's sensors, in declaration order.
func (p *Pipeline) SensorNames() []string {
	out := make([]string, len(p.sensors))
	for i, s := range p.sensors {
		out[i] = s.def.name
	}
	return out
}

// Selection names the assets a schedule runs: Select builds one.
type Selection []string

// Select names the assets a schedule runs at each tick, each with its
// missing dependencies, as Run does: one run per asset.
func Select(assets ...string) Selection { return Selection(slices.Clone(assets)) }

// ScheduleDef is a schedule, built by Schedule.
type ScheduleDef struct {
	name    string
	cron    string
	targets []string
	tz      string
	mapping TickMapping
	mapped  bool
	catchUp CatchUpPolicy
}

func (ScheduleDef) automation() {}

// ScheduleOption configures a schedule: InTimeZone, MapTick, CatchUp.
type ScheduleOption interface{ applySchedule(*ScheduleDef) }

// Schedule declares a schedule named name: at every tick of the cron
// expression it runs the selected assets (with their missing
// dependencies) for the partition the tick maps to.
//
// The expression has five fields (minute, hour, day of month, month, day
// of week: "0 2 * * *" is 02:00 every day), or six with seconds first
// ("*/5 * * * * *"), or is a descriptor: @yearly, @monthly, @weekly,
// @daily, @hourly, or @every DURATION. Its times are in UTC unless
// InTimeZone names a zone.
//
// Each tick maps to a partition (MapTick): by default the day before the
// tick's day for a daily-partitioned selection (a 02:00 run computes
// yesterday), the hour before the tick's hour for an hourly one, and
// DefaultPartition for an unpartitioned one. Other partitionings need
// MapTick(FixedKey(...)).
//
// Each tick fires once, whichever of the fleet's coordinators (or
// engines sharing a store) see it: the schedule's last tick is kept in the
// store and advanced by compare-and-set, and a tick's runs have run ids
// made of the schedule, the asset and the tick, which the fleet (and the
// engine) start once. A tick that came while nothing ran the schedule is
// caught up by its CatchUp policy (CatchUpLatest by default) when one runs
// it again. Ticks are counted from when the schedule is first seen, and
// from its resumption after a pause: ticks of a paused schedule are never
// caught up.
//
// Daylight saving time: ticks follow the wall clock of the time zone.
// A tick whose wall-clock time does not exist on the day clocks go
// forward (02:30 in Europe/Paris on the last Sunday of March) is skipped
// that day; a wall-clock time that happens twice on the day they go back
// fires once, at its first occurrence. Zones without DST, and UTC, have
// neither: pick one, or times outside the change (01:00 to 03:00), if a
// tick must fire every day.
func Schedule(name, cron string, target Selection, opts ...ScheduleOption) ScheduleDef {
	d := ScheduleDef{name: name, cron: cron, targets: slices.Clone(target), tz: "UTC"}
	for _, o := range opts {
		o.applySchedule(&d)
	}
	return d
}

type timeZoneOption string

func (o timeZoneOption) applySchedule(d *ScheduleDef) { d.tz = string(o) }

// InTimeZone makes a schedule's cron times wall-clock times of the IANA
// time zone name ("Europe/Paris", "America/New_York"; default "UTC"),
// and its ticks map to that zone's days and hours. An unknown zone is a
// ConfigError from Automate.
func InTimeZone(name string) ScheduleOption { return timeZoneOption(name) }

// TickMapping says which partition a schedule's tick runs: PreviousDay,
// SameDay, PreviousHour, SameHour (of the tick, in the schedule's time
// zone), or FixedKey.
type TickMapping struct {
	kind string
	key  string
}

// The tick mappings.
var (
	// PreviousDay maps a tick to the day before its day ("2025-01-14" for
	// a tick on 2025-01-15): the default of a daily-partitioned target.
	PreviousDay = TickMapping{kind: "previous_day"}
	// SameDay maps a tick to its own day.
	SameDay = TickMapping{kind: "day"}
	// PreviousHour maps a tick to the hour before its hour
	// ("2025-01-15T08" for a tick at 09:00): the default of an
	// hourly-partitioned target.
	PreviousHour = TickMapping{kind: "previous_hour"}
	// SameHour maps a tick to its own hour.
	SameHour = TickMapping{kind: "hour"}
)

// FixedKey maps every tick to the partition key, for targets partitioned
// otherwise than by day or hour (and DefaultPartition for unpartitioned
// ones, which is their default).
func FixedKey(key string) TickMapping { return TickMapping{kind: "fixed", key: key} }

// String is the mapping's wire form: "previous_day", "day",
// "previous_hour", "hour" or "fixed:KEY".
func (m TickMapping) String() string {
	if m.kind == "fixed" {
		return "fixed:" + m.key
	}
	return m.kind
}

// partition returns the partition of tick, in loc.
func (m TickMapping) partition(tick time.Time, loc *time.Location) string {
	t := tick.In(loc)
	switch m.kind {
	case "previous_day":
		return time.Date(t.Year(), t.Month(), t.Day()-1, 0, 0, 0, 0, time.UTC).Format(DateLayout)
	case "day":
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC).Format(DateLayout)
	case "previous_hour":
		return time.Date(t.Year(), t.Month(), t.Day(), t.Hour()-1, 0, 0, 0, time.UTC).Format(HourLayout)
	case "hour":
		return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), 0, 0, 0, time.UTC).Format(HourLayout)
	default:
		return m.key
	}
}

// parseTickMapping reads a mapping's wire form (see TickMapping.String).
func parseTickMapping(s string) (TickMapping, bool) {
	if key, ok := strings.CutPrefix(s, "fixed:"); ok {
		return FixedKey(key), true
	}
	for _, m := range []TickMapping{PreviousDay, SameDay, PreviousHour, SameHour} {
		if m.kind == s {
			return m, true
		}
	}
	return TickMapping{}, false
}

type mapTickOption TickMapping

func (o mapTickOption) applySchedule(d *ScheduleDef) { d.mapping, d.mapped = TickMapping(o), true }

// MapTick sets the partition a schedule's tick runs (see TickMapping).
func MapTick(m TickMapping) ScheduleOption { return mapTickOption(m) }

// CatchUpPolicy says what a schedule does with the ticks that came while
// nothing ran it (every coordinator down, the embedded engine's process
// not running), when something runs it again.
type CatchUpPolicy int

// The catch-up policies.
const (
	// CatchUpLatest fires the latest missed tick only, once: the usual
	// choice for a schedule whose run computes the latest data. The
	// default.
	CatchUpLatest CatchUpPolicy = iota
	// CatchUpAll fires every missed tick, oldest first, at most
	// MaxCatchUp of them (the latest ones; older ones are skipped and
	// counted): for runs of partitions that must each be computed.
	CatchUpAll
	// CatchUpNone fires no missed tick: a tick fires only within
	// CatchUpGrace of its time.
	CatchUpNone
)

// String is the policy's wire form: "latest", "all" or "none".
func (p CatchUpPolicy) String() string {
	switch p {
	case CatchUpAll:
		return "all"
	case CatchUpNone:
		return "none"
	default:
		return "latest"
	}
}

func parseCatchUp(s string) (CatchUpPolicy, bool) {
	for _, p := range []CatchUpPolicy{CatchUpLatest, CatchUpAll, CatchUpNone} {
		if p.String() == s {
			return p, true
		}
	}
	return 0, false
}

// MaxCatchUp is the most missed ticks CatchUpAll fires at once.
const MaxCatchUp = 100

// CatchUpGrace is how late a tick may be seen and still count as on
// time: CatchUpNone fires a tick seen within it of its time, and the
// other policies count a tick seen later as missed.
const CatchUpGrace = time.Minute

type catchUpOption CatchUpPolicy

func (o catchUpOption) applySchedule(d *ScheduleDef) { d.catchUp = CatchUpPolicy(o) }

// CatchUp sets what a schedule does with missed ticks (CatchUpLatest by
// default).
func CatchUp(p CatchUpPolicy) ScheduleOption { return catchUpOption(p) }

// scheduleSpec is a checked schedule of a pipeline.
type scheduleSpec struct {
	def     ScheduleDef
	spec    cron.Schedule
	loc     *time.Location
	mapping TickMapping
}

// cronParser reads the expressions Schedule documents.
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

func (p *Pipeline) compileSchedule(d ScheduleDef) (*scheduleSpec, error) {
	details := func(more ...any) map[string]any {
		m := map[string]any{"pipeline": p.name, "schedule": d.name}
		for i := 0; i+1 < len(more); i += 2 {
			m[more[i].(string)] = more[i+1]
		}
		return m
	}
	if strings.Contains(d.cron, "TZ=") {
		return nil, newError(TypeConfigError, details("cron", d.cron),
			"schedule %q: give the time zone with InTimeZone, not in the cron expression %q", d.name, d.cron)
	}
	spec, err := cronParser.Parse(d.cron)
	if err != nil {
		return nil, newError(TypeConfigError, details("cron", d.cron),
			"schedule %q: invalid cron expression %q: %v (five fields \"minute hour day-of-month month day-of-week\", six with seconds first, or @daily, @hourly, @every 1h...)",
			d.name, d.cron, err)
	}
	if d.tz == "" || d.tz == "Local" {
		return nil, newError(TypeConfigError, details("time_zone", d.tz),
			"schedule %q: time zone %q: name an IANA zone (\"Europe/Paris\") or \"UTC\": the local zone differs between machines", d.name, d.tz)
	}
	loc, err := time.LoadLocation(d.tz)
	if err != nil {
		return nil, newError(TypeConfigError, details("time_zone", d.tz),
			"schedule %q: unknown time zone %q: name an IANA zone such as \"Europe/Paris\" or \"UTC\"", d.name, d.tz)
	}
	if len(d.targets) == 0 {
		return nil, newError(TypeConfigError, details(), "schedule %q selects no asset: pass flowstone.Select(\"asset\", ...)", d.name)
	}
	var nodes []*node
	for i, a := range d.targets {
		n, err := p.lookup(a)
		if err != nil {
			fe := AsError(err)
			fe.Details["schedule"] = d.name
			fe.Message = "schedule " + quoteName(d.name) + ": " + fe.Message
			return nil, fe
		}
		if slices.Contains(d.targets[:i], a) {
			return nil, newError(TypeConfigError, details("asset", a), "schedule %q selects %q twice", d.name, a)
		}
		nodes = append(nodes, n)
	}
	m := d.mapping
	if !d.mapped {
		m, err = defaultMapping(p, d.name, nodes)
		if err != nil {
			return nil, err
		}
	}
	// A tick's key must be one every target takes: checked on a sample
	// tick (day and hour keys only differ in their date).
	sample := m.partition(time.Date(2025, 1, 15, 9, 0, 0, 0, loc), loc)
	for _, n := range nodes {
		if err := (*Engine)(nil).checkPartitionFor(p, n, sample); err != nil {
			fe := AsError(err)
			return nil, newError(TypeConfigError, details("asset", n.def.name, "mapping", m.String()),
				"schedule %q: asset %q cannot take the partitions its ticks map to (%s, such as %q): %s; choose them with MapTick",
				d.name, n.def.name, m, sample, fe.Message)
		}
	}
	if ss, ok := spec.(*cron.SpecSchedule); ok {
		ss.Location = loc // else robfig/cron reads times in the zone they come in
	}
	return &scheduleSpec{def: d, spec: spec, loc: loc, mapping: m}, nil
}

// defaultMapping is the mapping of a schedule without MapTick, from its
// targets' partitioning.
func defaultMapping(p *Pipeline, schedule string, nodes []*node) (TickMapping, error) {
	kinds := map[string]bool{}
	for _, n := range nodes {
		kinds[partitionKind(n)] = true
	}
	if len(kinds) == 1 {
		switch {
		case kinds[""]:
			return FixedKey(DefaultPartition), nil
		case kinds["date"]:
			return PreviousDay, nil
		case kinds["hour"]:
			return PreviousHour, nil
		}
	}
	var list []string
	for k := range kinds {
		list = append(list, cmpOr(k, "unpartitioned"))
	}
	slices.Sort(list)
	return TickMapping{}, newError(TypeConfigError, map[string]any{"pipeline": p.name, "schedule": schedule, "partitioned_by": list},
		"schedule %q: its assets are partitioned by [%s]: say which partition a tick runs with MapTick (PreviousDay, SameDay, PreviousHour, SameHour, FixedKey)",
		schedule, strings.Join(list, " "))
}

// partitionKind names the partitioning an asset takes keys of: its own,
// else the first of its upstream's; "" for an unpartitioned asset.
func partitionKind(n *node) string {
	if !n.partitioned {
		return ""
	}
	if n.def.partitions != nil {
		return n.def.partitions.Kind()
	}
	for _, in := range n.inputs {
		if k := partitionKind(in); k != "" {
			return k
		}
	}
	return "any"
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func quoteName(s string) string { return `"` + s + `"` }

// next returns the first tick after after, skipping the ticks whose wall
// clock is not after after's (a wall-clock time repeated when clocks go
// back fires once).
func (s *scheduleSpec) next(after time.Time) time.Time {
	t := s.spec.Next(after)
	for i := 0; i < 1000 && !t.IsZero() && !wallClock(t, s.loc).After(wallClock(after, s.loc)); i++ {
		t = s.spec.Next(t)
	}
	return t
}

// wallClock is t's wall-clock reading in loc, as a UTC time.
func wallClock(t time.Time, loc *time.Location) time.Time {
	t = t.In(loc)
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}

// SensorFunc is a sensor's function: given the cursor its last successful
// evaluation returned ("" the first time), it returns the runs to start
// and the cursor to keep. An error, a panic, or a result that does not
// check (see Sensor) makes a failed evaluation: nothing starts and the
// cursor stays, so the next evaluation sees the same input again.
type SensorFunc func(c *SensorContext, cursor string) (SensorResult, error)

// SensorResult is what a sensor's evaluation returns.
type SensorResult struct {
	// Runs are the runs to start, at most MaxSensorRuns.
	Runs []SensorRun `json:"runs,omitempty"`
	// Cursor is kept for the next evaluation, at most MaxCursorLen bytes
	// of UTF-8. "" keeps the cursor it was given.
	Cursor string `json:"cursor,omitempty"`
}

// SensorRun asks a sensor's pipeline to run an asset (with its missing
// dependencies) for a partition.
type SensorRun struct {
	// Asset names the asset; it must be in the pipeline.
	Asset string `json:"asset"`
	// Partition is the key ("" for DefaultPartition); the asset must take
	// it.
	Partition string `json:"partition,omitempty"`
	// RunKey dedupes: a sensor's request of the same run key, asset and
	// partition starts one run, however often it is returned (a retried
	// evaluation, an evaluation from an older cursor). "" is the
	// evaluation's input cursor: requests of an evaluation that is
	// repeated from the same cursor are not run twice.
	RunKey string `json:"run_key,omitempty"`
}

// Limits of a sensor's result.
const (
	// MaxSensorRuns is the most runs one evaluation may request.
	MaxSensorRuns = 1000
	// MaxCursorLen is the longest cursor, in bytes.
	MaxCursorLen = 16 << 10
	// MaxRunKeyLen is the longest run key, in bytes.
	MaxRunKeyLen = 1024
	// MinSensorInterval is the shortest interval between evaluations.
	MinSensorInterval = time.Second
	// DefaultSensorTimeout bounds an evaluation unless Timeout says
	// otherwise.
	DefaultSensorTimeout = 30 * time.Second
)

// SensorDef is a sensor, built by Sensor.
type SensorDef struct {
	name     string
	interval time.Duration
	fn       SensorFunc
	timeout  time.Duration
}

func (SensorDef) automation() {}

// SensorOption configures a sensor: Timeout bounds an evaluation (default
// DefaultSensorTimeout).
type SensorOption interface{ applySensor(*SensorDef) }

func (o timeoutOption) applySensor(d *SensorDef) { d.timeout = time.Duration(o) }

// Sensor declares a sensor named name: fn is evaluated every interval
// (at least MinSensorInterval) with the cursor its last successful
// evaluation returned, and the runs it returns are started, each with
// its missing dependencies.
//
// Each interval is evaluated once, whichever of the fleet's coordinators
// (or engines sharing a store) see it: the evaluation is claimed in the
// store by compare-and-set before it runs. On the fleet, fn is Go code of
// the pipeline, so a worker hosting the pipeline evaluates it, asked by
// the coordinator that claimed the interval; the coordinator keeps the
// cursor and starts the runs.
//
// An evaluation fails, and changes nothing (no run starts, the cursor
// stays), when fn returns an error, panics, exceeds its Timeout, or
// returns garbage: an asset not in the pipeline, a partition the asset
// does not take, more than MaxSensorRuns runs, a cursor or run key that
// is too long or not UTF-8. The failure is kept (Engine.Sensors shows it)
// and logged. The runs of a good result start before the cursor moves;
// run keys (SensorRun.RunKey) keep a run from starting twice.
func Sensor(name string, interval time.Duration, fn SensorFunc, opts ...SensorOption) SensorDef {
	d := SensorDef{name: name, interval: interval, fn: fn, timeout: DefaultSensorTimeout}
	for _, o := range opts {
		o.applySensor(&d)
	}
	return d
}

// sensorSpec is a checked sensor of a pipeline.
type sensorSpec struct {
	def SensorDef
	// remote: the function lives with the workers (a pipeline rebuilt
	// from its manifest).
	remote bool
}

func (p *Pipeline) compileSensor(d SensorDef) (*sensorSpec, error) {
	details := map[string]any{"pipeline": p.name, "sensor": d.name}
	if d.fn == nil {
		return nil, newError(TypeConfigError, details, "sensor %q in pipeline %s has no function", d.name, p.name)
	}
	if d.interval < MinSensorInterval {
		details["interval_ms"] = d.interval.Milliseconds()
		return nil, newError(TypeConfigError, details, "sensor %q: interval %v is below the minimum, %v", d.name, d.interval, MinSensorInterval)
	}
	if d.timeout <= 0 {
		return nil, newError(TypeConfigError, details, "sensor %q: timeout %v must be positive", d.name, d.timeout)
	}
	return &sensorSpec{def: d}, nil
}

// SensorContext is what a sensor's function gets: a context.Context
// bounded by the evaluation's timeout, a logger, and names.
//
// A SensorContext is valid only during the call it was passed to.
type SensorContext struct {
	ctx      context.Context
	logger   *zerolog.Logger
	pipeline string
	sensor   string
	now      time.Time
}

// Context returns the evaluation's context: done at its timeout, or when
// the process stops.
func (c *SensorContext) Context() context.Context { return c.ctx }

// Logger returns a logger that tags each line with the pipeline and the
// sensor.
func (c *SensorContext) Logger() *zerolog.Logger { return c.logger }

// Pipeline returns the pipeline's name.
func (c *SensorContext) Pipeline() string { return c.pipeline }

// Sensor returns the sensor's name.
func (c *SensorContext) Sensor() string { return c.sensor }

// Now returns the time of the evaluation, as the scheduler's clock tells
// it.
func (c *SensorContext) Now() time.Time { return c.now }

// checkResult checks a sensor's result against the pipeline: what makes
// it garbage (see Sensor) is a BadRequest error naming the field.
func (p *Pipeline) checkSensorResult(sensor string, r SensorResult) *Error {
	details := func(field string) map[string]any {
		return map[string]any{"pipeline": p.name, "sensor": sensor, "field": field}
	}
	if len(r.Runs) > MaxSensorRuns {
		return newError(TypeBadRequest, details("runs"), "sensor %q returned %d runs, more than %d", sensor, len(r.Runs), MaxSensorRuns)
	}
	if len(r.Cursor) > MaxCursorLen || !utf8.ValidString(r.Cursor) {
		return newError(TypeBadRequest, details("cursor"), "sensor %q returned a cursor of %d bytes that is longer than %d or not UTF-8", sensor, len(r.Cursor), MaxCursorLen)
	}
	for i, run := range r.Runs {
		n, err := p.lookup(run.Asset)
		if err != nil {
			fe := AsError(err)
			return newError(TypeBadRequest, details("runs"), "sensor %q returned run %d: %s", sensor, i, fe.Message)
		}
		if err := (*Engine)(nil).checkPartitionFor(p, n, cmpOr(run.Partition, DefaultPartition)); err != nil {
			return newError(TypeBadRequest, details("runs"), "sensor %q returned run %d of %q: %s", sensor, i, run.Asset, AsError(err).Message)
		}
		if len(run.RunKey) > MaxRunKeyLen || !utf8.ValidString(run.RunKey) {
			return newError(TypeBadRequest, details("runs"), "sensor %q returned run %d with a run key longer than %d bytes or not UTF-8", sensor, i, MaxRunKeyLen)
		}
	}
	return nil
}
