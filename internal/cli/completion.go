package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Shell completion: `fsctl completion SHELL` prints a script that asks
// fsctl itself for the candidates of the word being completed, through the
// hidden verb `fsctl __complete WORD...` (the words typed after fsctl, the
// last one the word being completed): verbs, a verb's flags, the values of
// flags that take one of a few, and pipeline and asset names, which it
// asks the fleet for (at --server, within completeWait; none when the
// fleet cannot be reached).

// completeVerb is the hidden verb the scripts call.
const completeVerb = "__complete"

// completeWait bounds the fleet lookups of a completion: a shell waits.
const completeWait = 2 * time.Second

// shells are the shells completion has a script for.
var shells = []string{"bash", "zsh", "fish"}

func completionCmd(fs *flag.FlagSet) func(*env) error {
	return func(e *env) error {
		shell := e.args[0]
		script, ok := completionScripts[shell]
		if !ok {
			return usageErr(e.cmd, "no completion for shell %q: use one of %s", shell, strings.Join(shells, ", "))
		}
		_, err := io.WriteString(e.stdout, script)
		return err
	}
}

var completionScripts = map[string]string{
	"bash": `# fsctl completion for bash: source <(fsctl completion bash)
_fsctl() {
	local IFS=$'\n'
	COMPREPLY=($(fsctl __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
}
complete -o default -F _fsctl fsctl
`,
	"zsh": `#compdef fsctl
# fsctl completion for zsh: source <(fsctl completion zsh)
_fsctl() {
	local -a candidates
	candidates=("${(@f)$(fsctl __complete "${(@)words[2,CURRENT]}" 2>/dev/null)}")
	compadd -a candidates
}
compdef _fsctl fsctl
`,
	"fish": `# fsctl completion for fish: fsctl completion fish | source
complete -c fsctl -f -a '(fsctl __complete (commandline -opc)[2..-1] (commandline -ct) 2>/dev/null)'
`,
}

// complete prints the candidates for the last of words, one per line.
// It never fails: a word it cannot complete gets no candidates.
func (e *env) complete(words []string) {
	if len(words) == 0 {
		words = []string{""}
	}
	cur, before := words[len(words)-1], words[:len(words)-1]
	var out []string
	for _, c := range e.candidates(before, cur) {
		if strings.HasPrefix(c, cur) {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	for _, c := range slices.Compact(out) {
		fmt.Fprintln(e.stdout, c)
	}
}

// candidates lists what may come after before, for a word beginning cur.
func (e *env) candidates(before []string, cur string) []string {
	var (
		cmd *command
		fs  = flag.NewFlagSet("fsctl", flag.ContinueOnError)
		pos []string
	)
	e.g.define(fs, nil)
	for i := 0; i < len(before); i++ {
		w := before[i]
		if strings.HasPrefix(w, "-") {
			name, value, hasValue := strings.Cut(strings.TrimLeft(w, "-"), "=")
			f := fs.Lookup(name)
			if f != nil && !hasValue && !isBoolFlag(f) && i+1 < len(before) {
				i++
				value, hasValue = before[i], true
			}
			if f != nil && hasValue {
				// --server and the TLS flags reach the fleet lookups.
				fs.Set(name, value)
			}
			continue
		}
		pos = append(pos, w)
		if cmd == nil {
			if cmd = lookup(w); cmd == nil {
				return nil
			}
			fs = flag.NewFlagSet("fsctl "+w, flag.ContinueOnError)
			cmd.setup(fs)
			e.g.define(fs, cmd)
		}
	}
	// A flag's value being typed.
	if n := len(before); n > 0 && strings.HasPrefix(before[n-1], "-") && !strings.Contains(before[n-1], "=") {
		if f := fs.Lookup(strings.TrimLeft(before[n-1], "-")); f != nil && !isBoolFlag(f) {
			return flagValues(cmd, f.Name)
		}
	}
	if strings.HasPrefix(cur, "-") {
		var out []string
		fs.VisitAll(func(f *flag.Flag) { out = append(out, "--"+f.Name) })
		return out
	}
	if cmd == nil {
		out := []string{"help", "completion"}
		for _, c := range commands {
			out = append(out, c.name)
		}
		return out
	}
	k := len(pos) - 1 // the positional argument being typed, after the verb
	switch {
	case cmd.name == "completion" && k == 0:
		return shells
	case k >= len(cmd.args):
		return nil
	}
	switch strings.Trim(cmd.args[k], "[]") {
	case "PIPELINE":
		return e.pipelineNames()
	case "ASSET":
		return e.assetNames(pos[1])
	case "ACTION":
		return []string{"pause", "resume"}
	}
	return nil
}

// flagValues are the values a flag takes, when they are a few.
func flagValues(cmd *command, name string) []string {
	switch {
	case name == "format" && cmd != nil && cmd.name == "graph":
		return []string{"ascii", "mermaid", "dot"}
	case name == "on-error":
		return []string{"continue", "halt"}
	case name == "priority":
		return []string{"0", "1", "2", "3"}
	}
	return nil
}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// pipelineNames asks the fleet for its pipelines.
func (e *env) pipelineNames() []string {
	c, err := e.client()
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(e.ctx, completeWait)
	defer cancel()
	ps, err := c.Pipelines(ctx)
	if err != nil {
		return nil
	}
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Name
	}
	return out
}

// assetNames asks the fleet for a pipeline's assets.
func (e *env) assetNames(pipeline string) []string {
	c, err := e.client()
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(e.ctx, completeWait)
	defer cancel()
	assets, err := c.Assets(ctx, pipeline)
	if err != nil {
		return nil
	}
	return assets
}
