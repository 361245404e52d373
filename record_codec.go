package flowstone

import (
	"encoding/base64"
	"encoding/json"
	"strconv"

	"github.com/flowstone-go/flowstone/internal/jsonw"
)

// appendRecord appends m as json.Marshal writes it, field by field, without
// reflection: MarshalRecord runs twice per materialization (the claim record
// and the final record). It reports false where it cannot be sure of
// matching json.Marshal (a time MarshalJSON rejects, error details that fail
// to encode); the caller then uses json.Marshal, so the bytes and the errors
// stay exactly json.Marshal's.
func appendRecord(dst []byte, m *Materialization) ([]byte, bool) {
	if m == nil {
		return append(dst, "null"...), true
	}
	dst = append(dst, `{"pipeline":`...)
	dst = jsonw.HTMLString(dst, m.Pipeline)
	dst = append(dst, `,"asset":`...)
	dst = jsonw.HTMLString(dst, m.Asset)
	dst = append(dst, `,"partition":`...)
	dst = jsonw.HTMLString(dst, m.Partition)
	dst = append(dst, `,"state":`...)
	dst = jsonw.HTMLString(dst, string(m.State))
	dst = append(dst, `,"run_id":`...)
	dst = jsonw.HTMLString(dst, m.RunID)
	if m.Storage != "" {
		dst = append(dst, `,"storage":`...)
		dst = jsonw.HTMLString(dst, m.Storage)
	}
	if m.ObjectKey != "" {
		dst = append(dst, `,"object_key":`...)
		dst = jsonw.HTMLString(dst, m.ObjectKey)
	}
	if m.Encoding != "" {
		dst = append(dst, `,"encoding":`...)
		dst = jsonw.HTMLString(dst, m.Encoding)
	}
	if m.Size != 0 {
		dst = append(dst, `,"size":`...)
		dst = strconv.AppendInt(dst, m.Size, 10)
	}
	if m.SHA256 != "" {
		dst = append(dst, `,"sha256":`...)
		dst = jsonw.HTMLString(dst, m.SHA256)
	}
	if len(m.Inline) > 0 {
		// encoding/json writes []byte as standard, padded base64, which
		// needs no escaping.
		dst = append(dst, `,"inline":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, m.Inline)
		dst = append(dst, '"')
	}
	if m.Worker != "" {
		dst = append(dst, `,"worker":`...)
		dst = jsonw.HTMLString(dst, m.Worker)
	}
	if m.Attempt != 0 {
		dst = append(dst, `,"attempt":`...)
		dst = strconv.AppendInt(dst, int64(m.Attempt), 10)
	}
	var ok bool
	if m.StartedAt != nil {
		dst = append(dst, `,"started_at":`...)
		if dst, ok = jsonw.Time(dst, *m.StartedAt); !ok {
			return dst, false
		}
	}
	if m.CompletedAt != nil {
		dst = append(dst, `,"completed_at":`...)
		if dst, ok = jsonw.Time(dst, *m.CompletedAt); !ok {
			return dst, false
		}
	}
	if m.DurationMS != 0 {
		dst = append(dst, `,"duration_ms":`...)
		dst = strconv.AppendInt(dst, m.DurationMS, 10)
	}
	if e := m.Error; e != nil {
		// *Error has no MarshalJSON: its exported fields, cause left out.
		dst = append(dst, `,"error":{"type":`...)
		dst = jsonw.HTMLString(dst, string(e.Type))
		dst = append(dst, `,"message":`...)
		dst = jsonw.HTMLString(dst, e.Message)
		if len(e.Details) > 0 {
			// Details hold anything: encoding/json writes them (a nested
			// json.Marshal writes the same bytes as the enclosing one).
			b, err := json.Marshal(e.Details)
			if err != nil {
				return dst, false
			}
			dst = append(dst, `,"details":`...)
			dst = append(dst, b...)
		}
		dst = append(dst, '}')
	}
	if len(m.Upstream) > 0 {
		dst = append(dst, `,"upstream":[`...)
		for i := range m.Upstream {
			l := &m.Upstream[i]
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"asset":`...)
			dst = jsonw.HTMLString(dst, l.Asset)
			dst = append(dst, `,"partition":`...)
			dst = jsonw.HTMLString(dst, l.Partition)
			dst = append(dst, `,"run_id":`...)
			dst = jsonw.HTMLString(dst, l.RunID)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	if s := m.Scatter; s != nil {
		dst = append(dst, `,"scatter":{"total":`...)
		dst = strconv.AppendInt(dst, int64(s.Total), 10)
		dst = append(dst, `,"completed":`...)
		dst = strconv.AppendInt(dst, int64(s.Completed), 10)
		dst = append(dst, `,"failed":`...)
		dst = strconv.AppendInt(dst, int64(s.Failed), 10)
		dst = append(dst, `,"pending":`...)
		dst = strconv.AppendInt(dst, int64(s.Pending), 10)
		dst = append(dst, '}')
	}
	return append(dst, '}'), true
}

// recordSizeHint is a capacity that usually holds m's encoding in one
// allocation.
func recordSizeHint(m *Materialization) int {
	// 320 covers the keys, quotes, numbers and two times.
	n := 320 + len(m.Pipeline) + len(m.Asset) + len(m.Partition) + len(m.State) +
		len(m.RunID) + len(m.Storage) + len(m.ObjectKey) + len(m.Encoding) +
		len(m.SHA256) + len(m.Worker) + base64.StdEncoding.EncodedLen(len(m.Inline))
	if m.Error != nil {
		n += 64 + len(m.Error.Type) + len(m.Error.Message)
	}
	for i := range m.Upstream {
		l := &m.Upstream[i]
		n += 40 + len(l.Asset) + len(l.Partition) + len(l.RunID)
	}
	if m.Scatter != nil {
		n += 96
	}
	return n
}
