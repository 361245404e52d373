package flowstone

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/flowstone-go/flowstone/internal/bridge/hook"
	"github.com/flowstone-go/flowstone/kv"
	"github.com/rs/zerolog"
)

// The scheduler of schedules and sensors. One implementation serves the
// embedded engine (Engine.StartAutomation: the engine's store, runs in
// this process, sensors evaluated here) and the fleet (each coordinator
// runs one over the fleet's automation bucket, starts runs as fleet
// runs, and asks a worker hosting the pipeline to evaluate a sensor).
//
// The state of each schedule and sensor is one key in the store, changed
// only by compare-and-set:
//
//   - a schedule's key holds its last tick handled: the ticks after it,
//     up to now, are due. A pass starts the runs of the due ticks it
//     fires (CatchUpPolicy) and then moves the last tick. A run's id is
//     made of the pipeline, the schedule, the asset and the tick, and the
//     launcher starts an id once: two schedulers that see the same tick
//     both try, one run starts; one that dies between the runs and the
//     move leaves the tick due, and the next pass starts nothing new.
//   - a sensor's key holds its cursor and its latest claimed evaluation.
//     A pass claims the interval by compare-and-set (one scheduler wins),
//     evaluates, starts the runs (ids made of the run key), then writes
//     the cursor over its own claim. A failed evaluation keeps the
//     cursor.

// autoState is a schedule's or sensor's key.
type autoState struct {
	V      int  `json:"v"`
	Paused bool `json:"paused,omitempty"`
	// Schedules: the latest tick handled (fired or skipped), the latest
	// fired, its partition and runs, and counts.
	LastTick      time.Time `json:"last_tick,omitzero"`
	FiredTick     time.Time `json:"fired_tick,omitzero"`
	LastPartition string    `json:"last_partition,omitempty"`
	LastRuns      []string  `json:"last_runs,omitempty"`
	Fired         int64     `json:"fired,omitempty"`
	Skipped       int64     `json:"skipped,omitempty"`
	// Sensors: the cursor, the latest claimed evaluation (when, by whom),
	// the latest good one, and counts.
	Cursor      string    `json:"cursor,omitempty"`
	EvalAt      time.Time `json:"eval_at,omitzero"`
	EvalBy      string    `json:"eval_by,omitempty"`
	OKAt        time.Time `json:"ok_at,omitzero"`
	Evaluations int64     `json:"evaluations,omitempty"`
	Failures    int64     `json:"failures,omitempty"`
	// LastError is the latest failure (a sensor's evaluation, a
	// schedule's run that could not start); nil after a success.
	LastError *autoError `json:"last_error,omitempty"`
}

type autoError struct {
	Type    ErrorType `json:"type"`
	Message string    `json:"message"`
	At      time.Time `json:"at"`
}

func (e *autoError) toError() *Error {
	if e == nil {
		return nil
	}
	return &Error{Type: e.Type, Message: e.Message, Details: map[string]any{"at": e.At}}
}

// autoStore reads and writes the states, with the clock that tells the
// time: what listing and pausing need, with or without a running
// scheduler.
type autoStore struct {
	kv     kv.Store
	prefix string // before "sched." and "sensor."
	clock  hook.Clock
}

func (s autoStore) key(kind string, p *Pipeline, name string) string {
	return s.prefix + kind + "." + p.name + "." + name
}

// read returns the state at key and its revision (0: none).
func (s autoStore) read(ctx context.Context, key string) (autoState, uint64, error) {
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, kv.ErrNotFound) {
		return autoState{V: 1}, 0, nil
	}
	if err != nil {
		return autoState{}, 0, err
	}
	var st autoState
	if err := json.Unmarshal(e.Value, &st); err != nil {
		// Unreadable: start it over, by compare-and-set on its revision.
		return autoState{V: 1}, e.Revision, nil
	}
	return st, e.Revision, nil
}

// write stores st at key over rev (0: create).
func (s autoStore) write(ctx context.Context, key string, st autoState, rev uint64) (uint64, error) {
	b, err := json.Marshal(st)
	if err != nil {
		return 0, err
	}
	if rev == 0 {
		return s.kv.Create(ctx, key, b)
	}
	return s.kv.Update(ctx, key, b, rev)
}

// ScheduleStatus describes a schedule and where it stands.
type ScheduleStatus struct {
	Pipeline string   `json:"pipeline"`
	Name     string   `json:"name"`
	Cron     string   `json:"cron"`
	TimeZone string   `json:"time_zone"`
	Assets   []string `json:"assets"`
	// Mapping is the partition a tick runs (TickMapping.String).
	Mapping string `json:"mapping"`
	// CatchUp is the catch-up policy (CatchUpPolicy.String).
	CatchUp string `json:"catch_up"`
	Paused  bool   `json:"paused"`
	// NextTick is the next tick that will fire (nil while paused).
	NextTick *time.Time `json:"next_tick,omitempty"`
	// LastTick is the latest tick fired (nil: none yet), with its
	// partition and runs.
	LastTick      *time.Time `json:"last_tick,omitempty"`
	LastPartition string     `json:"last_partition,omitempty"`
	LastRuns      []string   `json:"last_runs,omitempty"`
	// Fired and Skipped count the ticks fired and those the catch-up
	// policy skipped.
	Fired   int64 `json:"fired"`
	Skipped int64 `json:"skipped"`
	// Error is why the latest tick's runs could not all start, if so.
	Error *Error `json:"error,omitempty"`
}

// SensorStatus describes a sensor and where it stands.
type SensorStatus struct {
	Pipeline   string `json:"pipeline"`
	Name       string `json:"name"`
	IntervalMS int64  `json:"interval_ms"`
	Paused     bool   `json:"paused"`
	// Cursor is what the latest good evaluation returned.
	Cursor string `json:"cursor"`
	// LastEvaluation is when the latest evaluation began (nil: none yet),
	// NextEvaluation when the next one is due (nil while paused).
	LastEvaluation *time.Time `json:"last_evaluation,omitempty"`
	NextEvaluation *time.Time `json:"next_evaluation,omitempty"`
	// LastSuccess is when the latest good evaluation began.
	LastSuccess *time.Time `json:"last_success,omitempty"`
	// LastRuns are the runs the latest good evaluation started.
	LastRuns    []string `json:"last_runs,omitempty"`
	Evaluations int64    `json:"evaluations"`
	Failures    int64    `json:"failures"`
	// Error is why the latest evaluation failed; nil after a good one.
	Error *Error `json:"error,omitempty"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// schedules lists p's schedules' states.
func (s autoStore) schedules(ctx context.Context, p *Pipeline) ([]ScheduleStatus, error) {
	out := make([]ScheduleStatus, 0, len(p.schedules))
	now := s.clock.Now()
	for _, sc := range p.schedules {
		st, _, err := s.read(ctx, s.key("sched", p, sc.def.name))
		if err != nil {
			return nil, storeError(err, "read schedule "+sc.def.name)
		}
		ss := ScheduleStatus{Pipeline: p.name, Name: sc.def.name, Cron: sc.def.cron, TimeZone: sc.def.tz, Assets: slices.Clone(sc.def.targets),
			Mapping: sc.mapping.String(), CatchUp: sc.def.catchUp.String(), Paused: st.Paused,
			LastTick: timePtr(st.FiredTick), LastPartition: st.LastPartition, LastRuns: st.LastRuns, Fired: st.Fired, Skipped: st.Skipped,
			Error: st.LastError.toError()}
		if !st.Paused {
			from := st.LastTick
			if from.IsZero() {
				from = now
			}
			ss.NextTick = timePtr(sc.next(from))
		}
		out = append(out, ss)
	}
	return out, nil
}

// sensors lists p's sensors' states.
func (s autoStore) sensors(ctx context.Context, p *Pipeline) ([]SensorStatus, error) {
	out := make([]SensorStatus, 0, len(p.sensors))
	for _, sn := range p.sensors {
		st, _, err := s.read(ctx, s.key("sensor", p, sn.def.name))
		if err != nil {
			return nil, storeError(err, "read sensor "+sn.def.name)
		}
		ss := SensorStatus{Pipeline: p.name, Name: sn.def.name, IntervalMS: sn.def.interval.Milliseconds(), Paused: st.Paused, Cursor: st.Cursor,
			LastEvaluation: timePtr(st.EvalAt), LastSuccess: timePtr(st.OKAt), LastRuns: st.LastRuns,
			Evaluations: st.Evaluations, Failures: st.Failures, Error: st.LastError.toError()}
		if !st.Paused {
			next := s.clock.Now()
			if !st.EvalAt.IsZero() {
				next = st.EvalAt.Add(sn.def.interval)
			}
			ss.NextEvaluation = &next
		}
		out = append(out, ss)
	}
	return out, nil
}

// setPaused pauses or resumes p's schedule or sensor name. A resumed
// schedule counts ticks from now: those that came while it was paused
// are not caught up. A NotFound error lists the names there are.
func (s autoStore) setPaused(ctx context.Context, p *Pipeline, name string, paused bool) error {
	kind := ""
	var sched *scheduleSpec
	for _, sc := range p.schedules {
		if sc.def.name == name {
			kind, sched = "sched", sc
		}
	}
	for _, sn := range p.sensors {
		if sn.def.name == name {
			kind = "sensor"
		}
	}
	if kind == "" {
		names := append(p.ScheduleNames(), p.SensorNames()...)
		return newError(TypeNotFound, map[string]any{"pipeline": p.name, "name": name, "available": names},
			"pipeline %s has no schedule or sensor %q. Available: %v", p.name, name, names)
	}
	key := s.key(kind, p, name)
	for {
		st, rev, err := s.read(ctx, key)
		if err != nil {
			return storeError(err, "read "+name)
		}
		if st.Paused == paused && rev != 0 {
			return nil
		}
		st.Paused = paused
		if !paused && sched != nil {
			if now := s.clock.Now(); st.LastTick.Before(now) {
				st.LastTick = now
			}
		}
		if rev == 0 && sched != nil {
			st.LastTick = s.clock.Now()
		}
		if _, err := s.write(ctx, key, st, rev); errors.Is(err, kv.ErrConflict) {
			continue
		} else if err != nil {
			return storeError(err, "write "+name)
		}
		return nil
	}
}

func storeError(err error, what string) *Error {
	return wrapError(TypeStorageError, err, nil, "automation: %s: %v", what, err)
}

// sensorEvaluator evaluates a sensor: in this process (embedded, and on
// a fleet worker), or by asking a worker (a fleet coordinator).
type sensorEvaluator func(ctx context.Context, p *Pipeline, s *sensorSpec, cursor string, now time.Time) (SensorResult, *Error)

// automation is a running scheduler.
type automation struct {
	autoStore
	pipelines func() []*Pipeline
	launch    hook.Launcher[Pipeline]
	evaluate  sensorEvaluator
	log       zerolog.Logger
	// owner names this scheduler in a sensor's claim.
	owner string
	// poll is the longest wait between passes, so that pauses, resumes
	// and new pipelines are seen without a tick.
	poll time.Duration

	cancel context.CancelFunc
	done   sync.WaitGroup
	ended  chan struct{} // closed when the loop has returned
}

// autoPoll is the scheduler's longest wait between passes.
const autoPoll = time.Second

// start runs the scheduler until stop.
func (a *automation) start() {
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	a.ended = make(chan struct{})
	a.done.Add(1)
	go func() {
		defer a.done.Done()
		defer close(a.ended)
		a.loop(ctx)
	}()
}

// stopped is closed once the scheduler has stopped.
func (a *automation) stopped() <-chan struct{} { return a.ended }

// stop ends the scheduler and waits for it. Runs it started go on.
func (a *automation) stop() {
	a.cancel()
	a.done.Wait()
}

func (a *automation) loop(ctx context.Context) {
	a.log.Info().Msg("automation_started")
	defer a.log.Info().Msg("automation_stopped")
	for {
		now := a.clock.Now()
		next := a.pass(ctx, now)
		wait := a.poll
		if !next.IsZero() && next.Sub(now) < wait {
			wait = max(next.Sub(now), 0)
		}
		select {
		case <-ctx.Done():
			return
		case <-a.clock.After(wait):
		}
	}
}

// pass fires what is due at now and returns when something is due next
// (zero: nothing known).
func (a *automation) pass(ctx context.Context, now time.Time) time.Time {
	var next time.Time
	earliest := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, p := range a.pipelines() {
		for _, s := range p.schedules {
			if ctx.Err() != nil {
				return next
			}
			earliest(a.tickSchedule(ctx, p, s, now))
		}
		for _, s := range p.sensors {
			if ctx.Err() != nil {
				return next
			}
			earliest(a.evalSensor(ctx, p, s, now))
		}
	}
	return next
}

// casTries bounds the compare-and-set retries of one pass on one key.
const casTries = 8

// tickSchedule fires s's due ticks and returns its next tick.
func (a *automation) tickSchedule(ctx context.Context, p *Pipeline, s *scheduleSpec, now time.Time) time.Time {
	key := a.key("sched", p, s.def.name)
	log := a.log.With().Str("pipeline", p.name).Str("schedule", s.def.name).Logger()
	for range casTries {
		st, rev, err := a.read(ctx, key)
		if err != nil {
			log.Warn().Err(err).Msg("schedule_read_failed")
			return now.Add(a.poll)
		}
		if rev == 0 || st.LastTick.IsZero() {
			// First seen: ticks count from now.
			st.LastTick = now
			if _, err := a.write(ctx, key, st, rev); err != nil && !errors.Is(err, kv.ErrConflict) {
				log.Warn().Err(err).Msg("schedule_write_failed")
				return now.Add(a.poll)
			}
			continue
		}
		if st.Paused {
			return time.Time{}
		}
		due, total := s.due(st.LastTick, now)
		if total == 0 {
			return s.next(st.LastTick)
		}
		fire := due
		switch s.def.catchUp {
		case CatchUpLatest:
			fire = due[len(due)-1:]
		case CatchUpNone:
			fire = nil
			if last := due[len(due)-1]; now.Sub(last) <= CatchUpGrace {
				fire = due[len(due)-1:]
			}
		}
		skipped := total - len(fire)
		var (
			runs      []string
			partition string
			failure   *autoError
		)
		for _, tick := range fire {
			partition = s.mapping.partition(tick, s.loc)
			runs = runs[:0]
			for _, asset := range s.def.targets {
				id := scheduleRunID(p, s.def.name, asset, tick)
				started, err := a.launch.Launch(ctx, p, id, asset, partition)
				if err != nil {
					fe := AsError(err)
					if !permanent(fe) {
						// The store or the fleet failed: leave the tick due.
						log.Warn().Err(err).Time("tick", tick).Str("asset", asset).Msg("schedule_launch_failed")
						return now.Add(a.poll)
					}
					log.Error().Err(err).Time("tick", tick).Str("asset", asset).Str("partition", partition).Msg("schedule_run_refused")
					failure = &autoError{Type: fe.Type, Message: fe.Message, At: now}
					continue
				}
				runs = append(runs, id)
				if started {
					log.Info().Time("tick", tick).Str("asset", asset).Str("partition", partition).Str("run_id", id).Msg("schedule_fired")
				}
			}
		}
		st.LastTick = due[len(due)-1]
		if len(fire) > 0 {
			st.FiredTick, st.LastPartition, st.LastRuns = fire[len(fire)-1], partition, slices.Clone(runs)
			st.LastError = failure
		}
		st.Fired += int64(len(fire))
		st.Skipped += int64(skipped)
		if _, err := a.write(ctx, key, st, rev); errors.Is(err, kv.ErrConflict) {
			continue // another scheduler moved it: look again (its runs are ours)
		} else if err != nil {
			log.Warn().Err(err).Msg("schedule_write_failed")
			return now.Add(a.poll)
		}
		if skipped > 0 {
			log.Info().Int("skipped", skipped).Str("catch_up", s.def.catchUp.String()).Time("last_tick", st.LastTick).Msg("schedule_ticks_skipped")
		}
		return s.next(st.LastTick)
	}
	return now
}

// due returns the ticks after last up to now, the latest MaxCatchUp of
// them, and how many there are.
func (s *scheduleSpec) due(last, now time.Time) ([]time.Time, int) {
	var ticks []time.Time
	total := 0
	for t := s.next(last); !t.IsZero() && !t.After(now); t = s.next(t) {
		total++
		ticks = append(ticks, t)
		if len(ticks) > 2*MaxCatchUp {
			ticks = slices.Delete(ticks, 0, len(ticks)-MaxCatchUp)
		}
	}
	if len(ticks) > MaxCatchUp {
		ticks = ticks[len(ticks)-MaxCatchUp:]
	}
	return ticks, total
}

// permanent reports whether a launch error is the request's fault.
func permanent(fe *Error) bool {
	switch fe.Type {
	case TypeBadRequest, TypeAssetNotFound, TypeConfigError, TypePipelineNotFound:
		return true
	}
	return false
}

// evalSensor evaluates s if its interval has come, and returns when its
// next evaluation is due.
func (a *automation) evalSensor(ctx context.Context, p *Pipeline, s *sensorSpec, now time.Time) time.Time {
	key := a.key("sensor", p, s.def.name)
	log := a.log.With().Str("pipeline", p.name).Str("sensor", s.def.name).Logger()
	st, rev, err := a.read(ctx, key)
	if err != nil {
		log.Warn().Err(err).Msg("sensor_read_failed")
		return now.Add(a.poll)
	}
	if st.Paused {
		return time.Time{}
	}
	if !st.EvalAt.IsZero() && now.Before(st.EvalAt.Add(s.def.interval)) {
		return st.EvalAt.Add(s.def.interval)
	}
	// Claim the interval: of the schedulers that see it, one evaluates.
	st.EvalAt, st.EvalBy = now, a.by()
	rev, err = a.write(ctx, key, st, rev)
	if errors.Is(err, kv.ErrConflict) {
		return now // another claimed it: read again
	}
	if err != nil {
		log.Warn().Err(err).Msg("sensor_write_failed")
		return now.Add(a.poll)
	}
	cursor := st.Cursor
	res, fe := a.evaluate(ctx, p, s, cursor, now)
	if fe == nil {
		fe = p.checkSensorResult(s.def.name, res)
	}
	var runs []string
	if fe == nil {
		for _, r := range res.Runs {
			part := cmpOr(r.Partition, DefaultPartition)
			id := sensorRunID(p, s.def.name, r, cursor)
			started, err := a.launch.Launch(ctx, p, id, r.Asset, part)
			if err != nil {
				fe = AsError(err)
				break
			}
			runs = append(runs, id)
			if started {
				log.Info().Str("asset", r.Asset).Str("partition", part).Str("run_key", r.RunKey).Str("run_id", id).Msg("sensor_run_started")
			}
		}
	}
	// Record the outcome over the claim, unless the claim was lost.
	for range casTries {
		st.Evaluations++
		if fe == nil {
			if res.Cursor != "" {
				st.Cursor = res.Cursor
			}
			st.OKAt, st.LastRuns, st.LastError = now, runs, nil
		} else {
			st.Failures++
			st.LastError = &autoError{Type: fe.Type, Message: fe.Message, At: now}
		}
		_, err = a.write(ctx, key, st, rev)
		if !errors.Is(err, kv.ErrConflict) {
			break
		}
		// A pause or resume came meanwhile: keep it, if the claim is ours.
		if st, rev, err = a.read(ctx, key); err != nil || !st.EvalAt.Equal(now) || st.EvalBy != a.by() {
			log.Warn().Msg("sensor_claim_lost")
			return now
		}
		if st.Cursor != cursor {
			return now
		}
	}
	if err != nil {
		log.Warn().Err(err).Msg("sensor_write_failed")
	}
	if fe != nil {
		log.Warn().Str("error_type", string(fe.Type)).Str("error", fe.Message).Msg("sensor_failed")
	} else {
		log.Info().Int("runs", len(runs)).Bool("cursor_moved", res.Cursor != "" && res.Cursor != cursor).Msg("sensor_evaluated")
	}
	return now.Add(s.def.interval)
}

// by names this scheduler in a sensor's claim.
func (a *automation) by() string { return a.owner }

// scheduleRunID is the run id of asset at a schedule's tick: the same
// wherever it is computed.
func scheduleRunID(p *Pipeline, schedule, asset string, tick time.Time) string {
	return "sched-" + truncate(schedule, 40) + "-" + tick.UTC().Format("20060102T150405Z") + "-" + digest(p.name, schedule, asset)[:12]
}

// sensorRunID is the run id of a sensor's request: the same for the same
// run key, asset and partition (the input cursor standing in for an
// empty run key).
func sensorRunID(p *Pipeline, sensor string, r SensorRun, cursor string) string {
	key := "key:" + r.RunKey
	if r.RunKey == "" {
		key = "cursor:" + cursor
	}
	return "sensor-" + truncate(sensor, 40) + "-" + digest(p.name, sensor, r.Asset, cmpOr(r.Partition, DefaultPartition), key)[:24]
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// digest hashes parts, each length-prefixed.
func digest(parts ...string) string {
	h := sha256.New()
	for _, s := range parts {
		fmt.Fprintf(h, "%d:%s", len(s), s)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// runSensor evaluates s's function in this process: bounded by its
// timeout, a panic made an ExecutionFailed error with the stack, the
// result checked against p. A function that ignores its context past
// the timeout is left to return by itself.
func runSensor(ctx context.Context, p *Pipeline, s *sensorSpec, cursor string, now time.Time, log zerolog.Logger) (SensorResult, *Error) {
	details := map[string]any{"pipeline": p.name, "sensor": s.def.name}
	if s.remote || s.def.fn == nil {
		return SensorResult{}, newError(TypeConfigError, details, "sensor %q of pipeline %s runs on the workers hosting it, not in this process", s.def.name, p.name)
	}
	ctx, cancel := context.WithTimeout(ctx, s.def.timeout)
	defer cancel()
	logger := log.With().Str("pipeline", p.name).Str("sensor", s.def.name).Logger()
	sc := &SensorContext{ctx: ctx, logger: &logger, pipeline: p.name, sensor: s.def.name, now: now}
	type outcome struct {
		res SensorResult
		err *Error
	}
	done := make(chan outcome, 1)
	go func() {
		var o outcome
		defer func() {
			if r := recover(); r != nil {
				o.err = newError(TypeExecutionFailed, map[string]any{"pipeline": p.name, "sensor": s.def.name, "panic": fmt.Sprint(r), "stack": string(debug.Stack())},
					"sensor %q panicked: %v", s.def.name, r)
			}
			done <- o
		}()
		res, err := s.def.fn(sc, cursor)
		if err != nil {
			fe := AsError(err)
			o.err = wrapError(fe.Type, err, details, "sensor %q failed: %s", s.def.name, fe.Message)
			return
		}
		o.res = res
	}()
	select {
	case o := <-done:
		if o.err != nil {
			return SensorResult{}, o.err
		}
		if fe := p.checkSensorResult(s.def.name, o.res); fe != nil {
			return SensorResult{}, fe
		}
		return o.res, nil
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return SensorResult{}, newError(TypeTimeout, details, "sensor %q did not return within its timeout, %v", s.def.name, s.def.timeout)
		}
		return SensorResult{}, newError(TypeCancelled, details, "sensor %q: evaluation cancelled: %v", s.def.name, context.Cause(ctx))
	}
}
