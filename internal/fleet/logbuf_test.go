package fleet_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/rs/zerolog"
)

// logBuffer collects zerolog's JSON lines; safe for concurrent writes.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) logger() zerolog.Logger { return zerolog.New(b) }

// text returns what was logged.
func (b *logBuffer) text() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines decodes every line logged so far.
func (b *logBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b.buf.Bytes()))
	for sc.Scan() {
		var line map[string]any
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.UseNumber() // integers print as integers
		if err := dec.Decode(&line); err != nil {
			t.Fatalf("log line %q is not JSON: %v", sc.Text(), err)
		}
		out = append(out, line)
	}
	return out
}

// kept returns the warning that stream's field was kept, with its values
// as JSON renders them, or nil.
func (b *logBuffer) kept(t *testing.T, stream, field string) map[string]any {
	t.Helper()
	for _, l := range b.lines(t) {
		if l["message"] == "stream_setting_kept" && l["stream"] == stream && l["field"] == field {
			if l["level"] != "warn" {
				t.Errorf("kept setting logged at level %v, want warn: %v", l["level"], l)
			}
			return l
		}
	}
	return nil
}

// wantKept fails the test unless stream's field was logged as kept with
// these values (compared as printed).
func (b *logBuffer) wantKept(t *testing.T, stream, field string, have, want any) {
	t.Helper()
	l := b.kept(t, stream, field)
	if l == nil {
		t.Errorf("no stream_setting_kept line for %s %s; log:\n%v", stream, field, b.lines(t))
		return
	}
	if fmt.Sprint(l["have"]) != fmt.Sprint(have) || fmt.Sprint(l["want"]) != fmt.Sprint(want) {
		t.Errorf("%s %s logged have=%v want=%v, expected have=%v want=%v", stream, field, l["have"], l["want"], have, want)
	}
}
