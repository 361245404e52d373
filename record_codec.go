package flowstone

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
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
	dst = appendHTMLString(dst, m.Pipeline)
	dst = append(dst, `,"asset":`...)
	dst = appendHTMLString(dst, m.Asset)
	dst = append(dst, `,"partition":`...)
	dst = appendHTMLString(dst, m.Partition)
	dst = append(dst, `,"state":`...)
	dst = appendHTMLString(dst, string(m.State))
	dst = append(dst, `,"run_id":`...)
	dst = appendHTMLString(dst, m.RunID)
	if m.Storage != "" {
		dst = append(dst, `,"storage":`...)
		dst = appendHTMLString(dst, m.Storage)
	}
	if m.ObjectKey != "" {
		dst = append(dst, `,"object_key":`...)
		dst = appendHTMLString(dst, m.ObjectKey)
	}
	if m.Encoding != "" {
		dst = append(dst, `,"encoding":`...)
		dst = appendHTMLString(dst, m.Encoding)
	}
	if m.Size != 0 {
		dst = append(dst, `,"size":`...)
		dst = strconv.AppendInt(dst, m.Size, 10)
	}
	if m.SHA256 != "" {
		dst = append(dst, `,"sha256":`...)
		dst = appendHTMLString(dst, m.SHA256)
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
		dst = appendHTMLString(dst, m.Worker)
	}
	if m.Attempt != 0 {
		dst = append(dst, `,"attempt":`...)
		dst = strconv.AppendInt(dst, int64(m.Attempt), 10)
	}
	var ok bool
	if m.StartedAt != nil {
		dst = append(dst, `,"started_at":`...)
		if dst, ok = appendRecordTime(dst, *m.StartedAt); !ok {
			return dst, false
		}
	}
	if m.CompletedAt != nil {
		dst = append(dst, `,"completed_at":`...)
		if dst, ok = appendRecordTime(dst, *m.CompletedAt); !ok {
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
		dst = appendHTMLString(dst, string(e.Type))
		dst = append(dst, `,"message":`...)
		dst = appendHTMLString(dst, e.Message)
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
			dst = appendHTMLString(dst, l.Asset)
			dst = append(dst, `,"partition":`...)
			dst = appendHTMLString(dst, l.Partition)
			dst = append(dst, `,"run_id":`...)
			dst = appendHTMLString(dst, l.RunID)
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

// appendRecordTime appends t as time.Time.MarshalJSON writes it, reporting
// false where MarshalJSON fails (a year outside 0..9999, a zone offset of
// 24 hours or more).
func appendRecordTime(dst []byte, t time.Time) ([]byte, bool) {
	dst = append(dst, '"')
	n0 := len(dst)
	dst = t.AppendFormat(dst, time.RFC3339Nano)
	// The checks of time.Time.appendStrictRFC3339.
	switch {
	case dst[n0+len("9999")] != '-':
		return dst, false
	case dst[len(dst)-1] != 'Z':
		c := dst[len(dst)-len("Z07:00")]
		h := dst[len(dst)-len("07:00"):]
		if '0' <= c && c <= '9' || 10*(h[0]-'0')+(h[1]-'0') >= 24 {
			return dst, false
		}
	}
	return append(dst, '"'), true
}

// appendHTMLString appends s as json.Marshal writes a string (HTML escaping
// on): '"', '\\', control characters, '<', '>' and '&' escaped, U+2028 and
// U+2029 as \u2028 and \u2029, and each byte of invalid UTF-8 as \ufffd.
func appendHTMLString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	i := 0
	for i < len(s) && htmlSafe[s[i]] {
		i++
	}
	if i == len(s) {
		// Names, ids and most text: nothing to escape.
		dst = append(dst, s...)
		return append(dst, '"')
	}
	start := 0
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if htmlSafe[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '\\', '"':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				// Other control characters and <, >, &.
				dst = append(dst, '\\', 'u', '0', '0', recordHex[c>>4], recordHex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', recordHex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

const recordHex = "0123456789abcdef"

// htmlSafe holds the bytes json.Marshal writes inside a string as they are:
// ASCII but for control characters, '"', '\\', '<', '>' and '&'.
var htmlSafe = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()
