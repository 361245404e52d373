package flowstone

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"time"

	"github.com/flowstone-go/flowstone/internal/jsonw"
)

// appendRecord appends m as json.Marshal writes it, field by field, without
// reflection: marshalRecord runs for every transition of every
// materialization. It reports false where it cannot be sure of matching
// json.Marshal (a time MarshalJSON rejects, error details that fail to
// encode); the caller then uses json.Marshal, so the bytes and the errors
// stay exactly json.Marshal's.
func appendRecord(dst []byte, m *Materialization) ([]byte, bool) {
	if m == nil {
		return append(dst, "null"...), true
	}
	if m.Gate != nil {
		// A gate's record is rare and written a few times: json.Marshal.
		return dst, false
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
	if m.QueuedBy != "" {
		dst = append(dst, `,"queued_by":`...)
		dst = jsonw.HTMLString(dst, m.QueuedBy)
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
	for _, f := range [...]struct {
		key string
		t   *time.Time
	}{{`,"lease_until":`, m.LeaseUntil}, {`,"started_at":`, m.StartedAt}, {`,"completed_at":`, m.CompletedAt}} {
		if f.t != nil {
			dst = append(dst, f.key...)
			if dst, ok = jsonw.Time(dst, *f.t); !ok {
				return dst, false
			}
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
	if s := m.Scatter; s != nil {
		if len(s.FailedItems) > 0 {
			return dst, false // rare, and errors inside: json.Marshal's
		}
		dst = append(dst, `,"scatter":{"total":`...)
		dst = strconv.AppendInt(dst, int64(s.Total), 10)
		dst = append(dst, `,"completed":`...)
		dst = strconv.AppendInt(dst, int64(s.Completed), 10)
		dst = append(dst, `,"failed":`...)
		dst = strconv.AppendInt(dst, int64(s.Failed), 10)
		dst = append(dst, `,"cancelled":`...)
		dst = strconv.AppendInt(dst, int64(s.Cancelled), 10)
		dst = append(dst, `,"pending":`...)
		dst = strconv.AppendInt(dst, int64(s.Pending), 10)
		dst = append(dst, '}')
	}
	if v := m.Value; v != nil {
		if dst, ok = appendValue(append(dst, `,"value":`...), v); !ok {
			return dst, false
		}
	}
	return append(dst, '}'), true
}

// appendValue appends v as json.Marshal writes it.
func appendValue(dst []byte, v *Value) ([]byte, bool) {
	dst = append(dst, `{"run_id":`...)
	dst = jsonw.HTMLString(dst, v.RunID)
	dst = append(dst, `,"storage":`...)
	dst = jsonw.HTMLString(dst, v.Storage)
	if v.ObjectKey != "" {
		dst = append(dst, `,"object_key":`...)
		dst = jsonw.HTMLString(dst, v.ObjectKey)
	}
	if v.Encoding != "" {
		dst = append(dst, `,"encoding":`...)
		dst = jsonw.HTMLString(dst, v.Encoding)
	}
	if v.Size != 0 {
		dst = append(dst, `,"size":`...)
		dst = strconv.AppendInt(dst, v.Size, 10)
	}
	if v.SHA256 != "" {
		dst = append(dst, `,"sha256":`...)
		dst = jsonw.HTMLString(dst, v.SHA256)
	}
	if len(v.Inline) > 0 {
		// encoding/json writes []byte as standard, padded base64, which
		// needs no escaping.
		dst = append(dst, `,"inline":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, v.Inline)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"completed_at":`...)
	var ok bool
	if dst, ok = jsonw.Time(dst, v.CompletedAt); !ok {
		return dst, false
	}
	if v.DurationMS != 0 {
		dst = append(dst, `,"duration_ms":`...)
		dst = strconv.AppendInt(dst, v.DurationMS, 10)
	}
	if len(v.Upstream) > 0 {
		dst = append(dst, `,"upstream":[`...)
		for i := range v.Upstream {
			l := &v.Upstream[i]
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
	return append(dst, '}'), true
}

// recordSizeHint is a capacity that usually holds m's encoding in one
// allocation.
func recordSizeHint(m *Materialization) int {
	// 320 covers the keys, quotes, numbers and three times.
	n := 320 + len(m.Pipeline) + len(m.Asset) + len(m.Partition) + len(m.State) +
		len(m.RunID) + len(m.QueuedBy) + len(m.Worker)
	if m.Error != nil {
		n += 64 + len(m.Error.Type) + len(m.Error.Message)
	}
	if m.Scatter != nil {
		n += 128
	}
	if v := m.Value; v != nil {
		n += 160 + len(v.RunID) + len(v.Storage) + len(v.ObjectKey) + len(v.Encoding) + len(v.SHA256) +
			base64.StdEncoding.EncodedLen(len(v.Inline))
		for i := range v.Upstream {
			l := &v.Upstream[i]
			n += 40 + len(l.Asset) + len(l.Partition) + len(l.RunID)
		}
	}
	return n
}
