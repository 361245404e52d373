//go:build faults

package faults

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"syscall"
)

// module prefixes the fleet's own functions in a stack trace (the root
// package's as "module.", the others' as "module/").
const module = "github.com/flowstone-go/flowstone"

// goroutineHeader matches a goroutine's header, "goroutine 42 gp=0x… m=nil
// [select, 3 minutes]:", and captures its state.
var goroutineHeader = regexp.MustCompile(`^goroutine \d+ [^\[]*\[([^\]]*)\]`)

// waitingOnIO ends p with SIGQUIT, on which the Go runtime prints every
// goroutine's stack, and returns the goroutines of this module that wait
// on the network (NATS, S3), and the backfill's partitions, counted by
// where they wait: the network call and the three innermost frames of this
// module above it. It tells work hanging in a call with no deadline from
// work waiting for something that will not come.
func waitingOnIO(p *proc) ([]string, error) {
	if !p.running() {
		return nil, nil
	}
	before, err := os.Stat(p.logPath)
	if err != nil {
		return nil, err
	}
	if err := p.signal(syscall.SIGQUIT); err != nil {
		return nil, err
	}
	if err := p.waitExit(exitWait); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return nil, err
	}
	return ioWaits(string(b[before.Size():])), nil
}

// ioWaits summarizes a goroutine dump; see waitingOnIO.
func ioWaits(dump string) []string {
	count := map[string]int{}
	for _, block := range strings.Split(dump, "\n\n") {
		lines := strings.Split(strings.TrimSpace(block), "\n")
		m := goroutineHeader.FindStringSubmatch(lines[0])
		if m == nil {
			continue
		}
		var fns []string
		for _, l := range lines[1:] {
			if strings.HasPrefix(l, "\t") || strings.HasPrefix(l, "created by") {
				continue
			}
			if i := strings.LastIndex(l, "("); i > 0 {
				l = l[:i]
			}
			fns = append(fns, l)
		}
		if k := waitKey(fns); k != "" {
			count["["+m[1]+"] "+k]++
		}
	}
	keys := make([]string, 0, len(count))
	for k := range count {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return count[keys[i]] > count[keys[j]] || count[keys[i]] == count[keys[j]] && keys[i] < keys[j]
	})
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, fmt.Sprintf("%d× %s", count[k], k))
	}
	return out
}

// waitKey says where a goroutine whose functions are fns (innermost
// first) waits: in a network call made by this module's code, or, for a
// backfill's partition, wherever it is. Other goroutines give "".
func waitKey(fns []string) string {
	var call string
	var ours []string
	partition := false
	for _, fn := range fns {
		switch {
		case strings.HasPrefix(fn, module):
			if len(ours) < 3 {
				ours = append(ours, shortName(fn))
			}
			partition = partition || strings.Contains(fn, "(*Engine).Backfill.func")
		case call == "" && len(ours) == 0 && isIO(fn):
			call = shortName(fn)
		}
	}
	switch {
	case len(ours) == 0:
		return ""
	case call != "":
		return call + " ← " + strings.Join(ours, " ← ")
	case partition:
		return "backfill partition waiting in " + strings.Join(ours, " ← ")
	}
	return ""
}

// isIO reports whether fn is a client library call that waits on the
// network.
func isIO(fn string) bool {
	for _, p := range []string{"github.com/nats-io/", "github.com/minio/", "net/http."} {
		if strings.HasPrefix(fn, p) {
			return true
		}
	}
	return false
}

// shortName drops the module path of a function name.
func shortName(fn string) string {
	fn = strings.TrimPrefix(fn, "github.com/flowstone-go/")
	fn = strings.ReplaceAll(fn, "%2e", ".")
	if i := strings.LastIndex(fn, "/"); i >= 0 {
		fn = fn[i+1:]
	}
	return fn
}
