package daemon

import (
	"flag"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flowstone-go/flowstone/protocol"
)

// limitFlags registers the bounds of the fleet's streams, buckets and
// object stores (protocol.StreamLimits), each with its environment
// variable. Both daemons take them, since either may create what is
// missing: give every daemon of a fleet the same.
func (c *Config) limitFlags(fs *flag.FlagSet) {
	l := &c.Limits
	sizes := []struct {
		name, env, what string
		v               *int64
		def             int64
	}{
		{"task-max-bytes", "FLOWSTONE_TASK_MAX_BYTES", "bytes of queued tasks; a full queue refuses new tasks", &l.TaskMaxBytes, protocol.TaskMaxBytesDefault},
		{"completion-max-bytes", "FLOWSTONE_COMPLETION_MAX_BYTES", "bytes of the completions stream (kept an hour)", &l.CompletionMaxBytes, protocol.CompletionMaxBytesDefault},
		{"event-max-bytes", "FLOWSTONE_EVENT_MAX_BYTES", "bytes of the telemetry events stream (kept an hour)", &l.EventMaxBytes, protocol.EventMaxBytesDefault},
		{"records-max-bytes", "FLOWSTONE_RECORDS_MAX_BYTES", "bytes of the materialization records bucket; full, it refuses new materializations (0: no bound)", &l.RecordsMaxBytes, 0},
		{"results-max-bytes", "FLOWSTONE_RESULTS_MAX_BYTES", "bytes of the JetStream results object store; full, it refuses new results (0: no bound)", &l.ResultsMaxBytes, 0},
		{"scatter-max-bytes", "FLOWSTONE_SCATTER_MAX_BYTES", "bytes of the scatter bucket (outcomes of running scatters' batches)", &l.ScatterMaxBytes, protocol.ScatterMaxBytesDefault},
	}
	c.limitErrs = map[string]error{}
	for _, s := range sizes {
		*s.v = s.def
		if v := os.Getenv(s.env); v != "" {
			*s.v, c.limitErrs[s.name] = parseBytes(s.env, v)
		}
		fs.Func(s.name, fmt.Sprintf("%s: a `SIZE` in bytes, or with KiB, MiB, GiB or TiB (default %s); applied when created, never to an existing one [%s]",
			s.what, formatBytes(s.def), s.env), func(v string) (err error) {
			// The flag wins over the variable, even one it could not read.
			*s.v, err = parseBytes("--"+s.name, v)
			c.limitErrs[s.name] = err
			return err
		})
	}
	l.TaskMaxMsgs = protocol.TaskMaxMsgsDefault
	if v := os.Getenv("FLOWSTONE_TASK_MAX_MSGS"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			c.limitErrs["task-max-msgs"] = fmt.Errorf("FLOWSTONE_TASK_MAX_MSGS=%q is not a number of messages", v)
		}
		l.TaskMaxMsgs = n
	}
	fs.Func("task-max-msgs", fmt.Sprintf("most queued task `MESSAGES`; a full queue refuses new tasks (default %d) [FLOWSTONE_TASK_MAX_MSGS]", protocol.TaskMaxMsgsDefault),
		func(v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				err = fmt.Errorf("--task-max-msgs=%q: want a number of messages (0: the default)", v)
			}
			l.TaskMaxMsgs, c.limitErrs["task-max-msgs"] = n, err
			return err
		})
	l.TaskMaxAge = protocol.TaskMaxAgeDefault
	if v := os.Getenv("FLOWSTONE_TASK_MAX_AGE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			c.limitErrs["task-max-age"] = fmt.Errorf("FLOWSTONE_TASK_MAX_AGE=%q is not a duration such as 168h", v)
		}
		l.TaskMaxAge = d
	}
	fs.Func("task-max-age", fmt.Sprintf("a task no worker took within this `DURATION` is dropped (default %v) [FLOWSTONE_TASK_MAX_AGE]", protocol.TaskMaxAgeDefault),
		func(v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				err = fmt.Errorf("--task-max-age=%q: want a duration such as 168h (0: the default)", v)
			}
			l.TaskMaxAge, c.limitErrs["task-max-age"] = d, err
			return err
		})
}

// checkLimits reports a limit from the environment that could not be read,
// or one JetStream cannot use.
func (c *Config) checkLimits() error {
	names := slices.Sorted(maps.Keys(c.limitErrs))
	for _, n := range names {
		if err := c.limitErrs[n]; err != nil {
			return err
		}
	}
	return c.Limits.Check()
}

// byteUnits are the suffixes parseBytes takes, largest first.
var byteUnits = []struct {
	suffix string
	n      int64
}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}

// parseBytes reads a size given as name: a number of bytes, or a number
// with a binary unit ("512MiB").
func parseBytes(name, v string) (int64, error) {
	s, mult := strings.TrimSpace(v), int64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.n
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%s=%q: want a size in bytes, such as 1073741824 or 1GiB (0: the default)", name, v)
	}
	return n * mult, nil
}

// formatBytes is n in the largest binary unit that divides it.
func formatBytes(n int64) string {
	if n == 0 {
		return "0"
	}
	for _, u := range byteUnits {
		if n%u.n == 0 {
			return strconv.FormatInt(n/u.n, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}
