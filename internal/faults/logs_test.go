//go:build faults

package faults

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
)

// logFindings is what the daemons' logs say.
type logFindings struct {
	reported      int      // task_succeeded lines: completions the workers reported
	reportedTwice int      // asset-partitions of one run reported more than once
	unknownTasks  int      // task_succeeded lines of tasks outside the backfill
	top           []string // the most frequent warnings and errors, with one example each
}

// readLogs reads every daemon's JSON log.
func readLogs(procs []*proc, days []string) (logFindings, error) {
	var lf logFindings
	byHash := map[string]string{}
	for _, d := range days {
		s := sha256.Sum256([]byte(d))
		byHash[hex.EncodeToString(s[:16])] = d
	}
	reported := map[string]int{}
	type group struct {
		n       int
		example string
	}
	groups := map[string]*group{}
	for _, p := range procs {
		lines, err := p.logLines()
		if err != nil {
			return lf, err
		}
		for _, l := range lines {
			msg := l.str("message")
			if msg == "task_succeeded" {
				run, asset, hash, ok := splitTaskID(l.str("task_id"))
				if day := byHash[hash]; ok && day != "" {
					lf.reported++
					reported[run+"|"+asset+"|"+day]++
				} else {
					lf.unknownTasks++
				}
			}
			if lvl := l.str("level"); lvl == "warn" || lvl == "error" || msg == "task_failed" {
				role := strings.TrimRight(strings.SplitN(p.name, "-", 2)[0], "0123456789")
				k := role + " " + msg + ": " + errorClass(l)
				g := groups[k]
				if g == nil {
					g = &group{example: p.name + " " + clip(l.raw, 400)}
					groups[k] = g
				}
				g.n++
			}
		}
	}
	for _, n := range reported {
		if n > 1 {
			lf.reportedTwice++
		}
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if groups[keys[i]].n != groups[keys[j]].n {
			return groups[keys[i]].n > groups[keys[j]].n
		}
		return keys[i] < keys[j]
	})
	for i, k := range keys {
		if i == 10 {
			break
		}
		lf.top = append(lf.top, fmt.Sprintf("%d× %s\n      e.g. %s", groups[k].n, k, groups[k].example))
	}
	return lf, nil
}

// splitTaskID splits protocol.TaskID's "<run>.<asset>.<partition hash>.<attempt>".
func splitTaskID(id string) (run, asset, hash string, ok bool) {
	parts := strings.Split(id, ".")
	if len(parts) < 4 {
		return "", "", "", false
	}
	n := len(parts)
	return strings.Join(parts[:n-3], "."), parts[n-3], parts[n-2], true
}

// errorClass is the first words of a line's error, without the ids and
// numbers that would make every line its own group.
func errorClass(l logLine) string {
	e := l.str("error")
	if e == "" {
		e = l.str("code")
	}
	words := strings.Fields(e)
	out := make([]string, 0, 8)
	for _, w := range words {
		if strings.ContainsAny(w, "0123456789") {
			w = "…"
		}
		if len(out) > 0 && out[len(out)-1] == "…" && w == "…" {
			continue
		}
		out = append(out, w)
		if len(out) == 8 {
			break
		}
	}
	return strings.Join(out, " ")
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
