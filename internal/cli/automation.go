package cli

import (
	"flag"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/flowstone-go/flowstone"
)

// The automation's commands: schedules, schedule pause|resume, sensors,
// sensor pause|resume.

func schedulesCmd(fs *flag.FlagSet) func(*env) error {
	return func(e *env) error {
		c, err := e.client()
		if err != nil {
			return err
		}
		list, err := c.Schedules(e.ctx, optionalArg(e.args))
		if err != nil {
			return err
		}
		if e.g.json {
			if list == nil {
				list = []flowstone.ScheduleStatus{}
			}
			return e.writeJSON(map[string]any{"schedules": list})
		}
		if len(list) == 0 {
			fmt.Fprintln(e.stdout, "no schedules")
			return nil
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PIPELINE\tSCHEDULE\tCRON\tTIME ZONE\tASSETS\tSTATE\tNEXT TICK\tLAST TICK\tLAST PARTITION\tFIRED")
		for _, s := range list {
			state := "active"
			if s.Paused {
				state = "paused"
			}
			if s.Error != nil {
				state += " (error: " + oneLine(s.Error.Message) + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", s.Pipeline, s.Name, s.Cron, s.TimeZone, strings.Join(s.Assets, ","),
				state, when(s.NextTick), when(s.LastTick), dash(s.LastPartition), s.Fired)
		}
		return tw.Flush()
	}
}

func sensorsCmd(fs *flag.FlagSet) func(*env) error {
	return func(e *env) error {
		c, err := e.client()
		if err != nil {
			return err
		}
		list, err := c.Sensors(e.ctx, optionalArg(e.args))
		if err != nil {
			return err
		}
		if e.g.json {
			if list == nil {
				list = []flowstone.SensorStatus{}
			}
			return e.writeJSON(map[string]any{"sensors": list})
		}
		if len(list) == 0 {
			fmt.Fprintln(e.stdout, "no sensors")
			return nil
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PIPELINE\tSENSOR\tEVERY\tSTATE\tNEXT EVALUATION\tLAST EVALUATION\tCURSOR\tEVALUATIONS\tFAILURES")
		for _, s := range list {
			state := "active"
			if s.Paused {
				state = "paused"
			}
			if s.Error != nil {
				state += " (failed: " + oneLine(s.Error.Message) + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\n", s.Pipeline, s.Name, time.Duration(s.IntervalMS)*time.Millisecond, state,
				when(s.NextEvaluation), when(s.LastEvaluation), safe(s.Cursor), s.Evaluations, s.Failures)
		}
		return tw.Flush()
	}
}

// pauseCmd is schedule (what "schedule") or sensor pause|resume.
func pauseCmd(what string) func(fs *flag.FlagSet) func(*env) error {
	return func(fs *flag.FlagSet) func(*env) error {
		return func(e *env) error {
			action, pipeline, name := e.args[0], e.args[1], e.args[2]
			if action != "pause" && action != "resume" {
				return usageErr(e.cmd, "%s: say pause or resume, not %s", what, safe(action))
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			// Schedules and sensors share a pipeline's names: the one
			// named must be of the kind the command says.
			var names []string
			if what == "schedule" {
				list, err := c.Schedules(e.ctx, pipeline)
				if err != nil {
					return err
				}
				for _, s := range list {
					names = append(names, s.Name)
				}
			} else {
				list, err := c.Sensors(e.ctx, pipeline)
				if err != nil {
					return err
				}
				for _, s := range list {
					names = append(names, s.Name)
				}
			}
			if !slices.Contains(names, name) {
				return &flowstone.Error{Type: flowstone.TypeNotFound, Details: map[string]any{"pipeline": pipeline, "name": name, "available": names},
					Message: fmt.Sprintf("pipeline %s has no %s %q. Available: %v", pipeline, what, name, names)}
			}
			verb := c.PauseAutomation
			if action == "resume" {
				verb = c.ResumeAutomation
			}
			if err := verb(e.ctx, pipeline, name); err != nil {
				return err
			}
			if e.g.json {
				return e.writeJSON(map[string]any{"pipeline": pipeline, "name": name, "paused": action == "pause"})
			}
			fmt.Fprintf(e.stdout, "%s %s %s.%s\n", map[string]string{"pause": "paused", "resume": "resumed"}[action], what, pipeline, name)
			return nil
		}
	}
}

func optionalArg(args []string) string {
	if len(args) > 0 {
		return args[0]
	}
	return ""
}

func when(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
