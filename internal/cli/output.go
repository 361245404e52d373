package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"unicode"

	"github.com/flowstone-go/flowstone"
)

// writeJSON writes v to stdout as one indented JSON document.
func (e *env) writeJSON(v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeJSONLine writes v to stdout as one line of JSON.
func (e *env) writeJSONLine(v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// resultJSON is a result as --json prints it.
type resultJSON struct {
	Asset     string          `json:"asset"`
	Partition string          `json:"partition"`
	RunID     string          `json:"run_id"`
	Cached    bool            `json:"cached"`
	Job       *flowstone.Job  `json:"job,omitempty"`
	Storage   string          `json:"storage,omitempty"`
	ObjectKey string          `json:"object_key,omitempty"`
	Encoding  string          `json:"encoding,omitempty"`
	Size      int64           `json:"size,omitempty"`
	SHA256    string          `json:"sha256,omitempty"`
	Value     json.RawMessage `json:"value,omitempty"`
	Out       string          `json:"out,omitempty"`
}

// printResult prints a result's value (or writes it to out) and, with
// --json, its metadata.
func (e *env) printResult(ctx context.Context, res *flowstone.Result, out string) error {
	r := resultJSON{Asset: res.Asset, Partition: res.Partition, RunID: res.RunID, Cached: res.Cached, Job: res.Job}
	if rec := res.Record; rec != nil {
		r.Storage, r.ObjectKey, r.Encoding, r.Size, r.SHA256 = rec.Storage, rec.ObjectKey, rec.Encoding, rec.Size, rec.SHA256
	}
	if res.Job != nil {
		if e.g.json {
			return e.writeJSON(r)
		}
		j := res.Job
		fmt.Fprintf(e.stdout, "enqueued %s %s [%s]: job %s, %s", j.Pipeline, j.Asset, safe(j.Partition), j.ID, j.State)
		if !j.ScheduledAt.IsZero() {
			fmt.Fprintf(e.stdout, ", starts at %s", j.ScheduledAt.Format("2006-01-02T15:04:05Z07:00"))
		}
		fmt.Fprintln(e.stdout)
		return nil
	}
	b, err := res.Bytes(ctx)
	if err != nil {
		return err
	}
	raw := res.Record != nil && res.Record.Encoding == flowstone.EncodingRaw
	if out != "" {
		if err := os.WriteFile(out, b, 0o644); err != nil {
			return &flowstone.Error{Type: flowstone.TypeConfigError, Message: "cannot write --out " + out + ": " + err.Error(),
				Details: map[string]any{"out": out}}
		}
		if e.g.json {
			r.Out = out
			return e.writeJSON(r)
		}
		fmt.Fprintf(e.stderr, "wrote %d bytes to %s\n", len(b), out)
		return nil
	}
	if e.g.json {
		if raw {
			b, _ = json.Marshal(b) // base64, as on the wire
		}
		r.Value = b
		return e.writeJSON(r)
	}
	if raw {
		_, err := e.stdout.Write(b)
		return err
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, b, "", "  ") != nil {
		pretty.Reset()
		pretty.Write(b)
	}
	pretty.WriteByte('\n')
	_, err = e.stdout.Write(pretty.Bytes())
	return err
}

// safe shows user text (a partition) on a terminal: as is when it is
// plain, quoted when it has spaces or control characters.
func safe(s string) string {
	if s == "" {
		return `""`
	}
	for _, r := range s {
		if !unicode.IsGraphic(r) || unicode.IsSpace(r) || r == '"' {
			return strconv.Quote(s)
		}
	}
	return s
}
