package fleet

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// need is what the fleet needs of one stream: the settings it creates the
// stream with, and which of them the code cannot do without.
type need struct {
	// cfg creates the stream, and is what an existing one is compared with.
	cfg jetstream.StreamConfig
	// workQueue: an existing stream must have work-queue retention
	// (tasks are deleted once acknowledged and go to one worker).
	workQueue bool
	// leaderReads: reads of a replicated stream should be answered by its
	// leader (a bucket's; see jskv.New), not by followers that may lag.
	leaderReads bool
	// scheduleHorizon, when set, is how far ahead runs are scheduled: an
	// existing stream must keep its messages that long.
	scheduleHorizon time.Duration
}

// difference is one setting of an existing stream that is not the one the
// fleet would create it with.
type difference struct {
	field      string
	have, want any
	// fix says what the operator must change; empty when the fleet works
	// with the stream as it is (the setting is kept and logged).
	fix string
}

// ensureStream creates the stream n describes if it is missing. An
// existing stream is never changed: its settings that differ are logged,
// one line each, and start-up fails if the fleet cannot work with them.
func ensureStream(ctx context.Context, js jetstream.JetStream, s settings, n need) error {
	stream, err := js.Stream(ctx, n.cfg.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		stream, err = js.CreateStream(ctx, n.cfg)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			// Another process created it meanwhile, with other settings.
			stream, err = js.Stream(ctx, n.cfg.Name)
		} else if err != nil {
			return createError(n.cfg, err)
		}
	}
	if err != nil {
		return fmt.Errorf("stream %s: %w", n.cfg.Name, err)
	}
	return checkStream(s, n, stream.CachedInfo().Config)
}

// checkExisting compares the existing stream name (a bucket's or an object
// store's, which the caller has just opened or created) with n.
func checkExisting(ctx context.Context, js jetstream.JetStream, s settings, n need) error {
	stream, err := js.Stream(ctx, n.cfg.Name)
	if err != nil {
		return fmt.Errorf("stream %s: %w", n.cfg.Name, err)
	}
	return checkStream(s, n, stream.CachedInfo().Config)
}

// checkStream logs each setting of have that differs from n and returns an
// error naming every one the fleet cannot work with, and how to fix it.
func checkStream(s settings, n need, have jetstream.StreamConfig) error {
	var broken []string
	for _, d := range differences(n, have) {
		if d.fix != "" {
			broken = append(broken, fmt.Sprintf("%s is %v, the fleet needs %v: %s", d.field, d.have, d.want, d.fix))
			continue
		}
		s.log.Warn().Str("stream", n.cfg.Name).Str("field", d.field).Interface("have", d.have).Interface("want", d.want).
			Msg("stream_setting_kept")
	}
	if len(broken) > 0 {
		return fmt.Errorf("stream %s exists with settings the fleet cannot work with (start-up changes no existing stream): %s",
			n.cfg.Name, strings.Join(broken, "; "))
	}
	return nil
}

// differences lists the settings of have that differ from n: the ones the
// fleet sets, and the limits that would drop its messages.
func differences(n need, have jetstream.StreamConfig) []difference {
	want, name := n.cfg, n.cfg.Name
	var out []difference
	add := func(field string, h, w any, fix string) {
		out = append(out, difference{field: field, have: h, want: w, fix: fix})
	}
	if have.Sealed {
		add("sealed", true, false, "a sealed stream takes no writes: delete it (nats stream rm "+name+") and start again")
	}
	if missing := uncovered(want.Subjects, have.Subjects); len(missing) > 0 {
		add("subjects", have.Subjects, want.Subjects, fmt.Sprintf("add %s (nats stream edit %s --subjects %s)",
			strings.Join(missing, ", "), name, strings.Join(append(slices.Clone(have.Subjects), missing...), ",")))
	}
	if have.Retention != want.Retention {
		fix := ""
		if n.workQueue {
			fix = "retention cannot be changed to work queue: delete the stream when no task is in flight (nats stream rm " + name + ") and start again"
		}
		add("retention", have.Retention.String(), want.Retention.String(), fix)
	}
	if want.AllowMsgSchedules && !have.AllowMsgSchedules {
		add("allow_msg_schedules", false, true, "scheduled runs need it (nats stream edit "+name+" --allow-schedules; nats-server 2.12 or later)")
	}
	if have.Replicas != want.Replicas {
		add("replicas", have.Replicas, want.Replicas, "")
	}
	if n.leaderReads && have.Replicas > 1 && have.AllowDirect {
		// Any replica answers a direct get, from what it has applied: a
		// read just after a write may miss it (nats stream edit NAME
		// --no-allow-direct).
		add("allow_direct", true, false, "")
	}
	if have.Storage != want.Storage {
		add("storage", have.Storage.String(), want.Storage.String(), "")
	}
	switch {
	case n.scheduleHorizon > 0 && have.MaxAge > 0 && have.MaxAge < n.scheduleHorizon:
		add("max_age", age(have.MaxAge), age(want.MaxAge), fmt.Sprintf(
			"runs scheduled up to %s ahead would expire before they fire: raise it (nats stream edit %s --max-age %s) or lower the schedule horizon",
			age(n.scheduleHorizon), name, age(want.MaxAge)))
	case have.MaxAge != want.MaxAge:
		add("max_age", age(have.MaxAge), age(want.MaxAge), "")
	}
	if want.Discard == jetstream.DiscardNew && have.Discard != want.Discard {
		add("discard", have.Discard.String(), want.Discard.String(), "")
	}
	if limit(have.MaxBytes) != limit(want.MaxBytes) {
		add("max_bytes", limit(have.MaxBytes), limit(want.MaxBytes), "")
	}
	if limit(have.MaxMsgs) != limit(want.MaxMsgs) {
		add("max_msgs", limit(have.MaxMsgs), limit(want.MaxMsgs), "")
	}
	if limit(have.MaxMsgsPerSubject) != limit(want.MaxMsgsPerSubject) {
		add("max_msgs_per_subject", limit(have.MaxMsgsPerSubject), limit(want.MaxMsgsPerSubject), "")
	}
	if want.Duplicates > 0 && have.Duplicates != want.Duplicates {
		add("duplicate_window", age(have.Duplicates), age(want.Duplicates), "")
	}
	if have.PersistMode != want.PersistMode {
		add("persist_mode", persistMode(have.PersistMode), persistMode(want.PersistMode), "")
	}
	return out
}

// uncovered returns the subjects of want that no subject of have matches.
func uncovered(want, have []string) []string {
	var missing []string
	for _, w := range want {
		if !slices.ContainsFunc(have, func(h string) bool { return covers(h, w) }) {
			missing = append(missing, w)
		}
	}
	return missing
}

// covers reports whether every subject that subject matches is also
// matched by pattern (both may hold the wildcards * and >).
func covers(pattern, subject string) bool {
	p, s := strings.Split(pattern, "."), strings.Split(subject, ".")
	for i, tok := range p {
		switch {
		case tok == ">":
			return i < len(s)
		case i >= len(s):
			return false
		case tok == "*":
			if s[i] == ">" {
				return false
			}
		case tok != s[i]:
			return false
		}
	}
	return len(p) == len(s)
}

// limit renders a stream limit, where zero and -1 both mean none.
func limit(n int64) any {
	if n <= 0 {
		return "unlimited"
	}
	return n
}

// age renders a duration setting, where zero means none.
func age(d time.Duration) string {
	if d == 0 {
		return "unlimited"
	}
	return d.String()
}

func persistMode(m jetstream.PersistModeType) string {
	if m == jetstream.AsyncPersistMode {
		return "async"
	}
	return "default"
}

// createError explains a failed creation; a replica count the servers
// cannot hold gets its fix.
func createError(cfg jetstream.StreamConfig, err error) error {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case 10074, 10023, 10005: // replicas > 1 on one server; too few servers; no peers
			return fmt.Errorf("create stream %s with %d replicas: %w: a stream needs as many JetStream servers in the cluster as replicas; lower --replicas (FLOWSTONE_REPLICAS) or add servers",
				cfg.Name, cfg.Replicas, err)
		}
	}
	return fmt.Errorf("create stream %s: %w", cfg.Name, err)
}
