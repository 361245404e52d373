package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
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
		r.Storage, r.ObjectKey, r.Encoding, r.Size, r.SHA256 = rec.Value.Storage, rec.Value.ObjectKey, rec.Value.Encoding, rec.Value.Size, rec.Value.SHA256
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
	raw := res.Record != nil && res.Record.Value.Encoding == flowstone.EncodingRaw
	if out != "" {
		n, err := writeOut(ctx, res, out)
		if err != nil {
			return err
		}
		if e.g.json {
			r.Out = out
			return e.writeJSON(r)
		}
		fmt.Fprintf(e.stderr, "wrote %d bytes to %s\n", n, out)
		return nil
	}
	if raw && !e.g.json {
		// Raw bytes go out as they are read: a large result is never
		// held whole.
		rc, err := res.Open(ctx)
		if err != nil {
			return err
		}
		defer rc.Close()
		_, err = io.Copy(e.stdout, rc)
		return err
	}
	b, err := res.Bytes(ctx)
	if err != nil {
		return err
	}
	if e.g.json {
		if raw {
			b, _ = json.Marshal(b) // base64, as on the wire
		}
		r.Value = b
		return e.writeJSON(r)
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

// writeOut streams the result's stored bytes into the file out: into a
// temporary file beside it, renamed over out once every byte is read and
// checked, so a failed read leaves no partial file and a large result is
// never held in memory. It returns the number of bytes written.
func writeOut(ctx context.Context, res *flowstone.Result, out string) (int64, error) {
	fileErr := func(err error) error {
		return &flowstone.Error{Type: flowstone.TypeConfigError, Message: "cannot write --out " + out + ": " + err.Error(),
			Details: map[string]any{"out": out}}
	}
	rc, err := res.Open(ctx)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	f, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*.part")
	if err != nil {
		return 0, fileErr(err)
	}
	done := false
	defer func() {
		if !done {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	src := &readErrs{r: rc}
	n, err := io.Copy(f, src)
	if err != nil {
		if src.err == nil {
			return 0, fileErr(err)
		}
		// The read failed: the store, or the bytes' checksum.
		if fe := (*flowstone.Error)(nil); errors.As(src.err, &fe) {
			return 0, fe
		}
		return 0, &flowstone.Error{Type: flowstone.TypeStorageError, Message: "read the result of " + res.Asset + ": " + src.err.Error(),
			Details: map[string]any{"asset": res.Asset, "partition": res.Partition}}
	}
	if err := f.Chmod(0o644); err != nil {
		return 0, fileErr(err)
	}
	if err := f.Close(); err != nil {
		return 0, fileErr(err)
	}
	done = true
	if err := os.Rename(f.Name(), out); err != nil {
		os.Remove(f.Name())
		return 0, fileErr(err)
	}
	return n, nil
}

// readErrs remembers the error its reader returned (other than io.EOF),
// to tell a failed read from a failed write after io.Copy.
type readErrs struct {
	r   io.Reader
	err error
}

func (x *readErrs) Read(p []byte) (int, error) {
	n, err := x.r.Read(p)
	if err != nil && err != io.EOF {
		x.err = err
	}
	return n, err
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
