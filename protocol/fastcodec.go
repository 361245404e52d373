package protocol

// Fast codecs for the hot messages: Task and Completion (and their
// batches), which every materialization encodes and decodes once each.
//
// The encoders write, without reflection, the bytes encodeJSON writes (the
// fields in struct order, omitempty as tagged); the error's details go
// through appendJSONObject, the event encoder's. Where encoding/json would
// fail, or the message is over the limit, they give the work to
// encodeJSON, so that errors stay the same.
//
// The decoders parse only the canonical form those encoders write: every
// field in order, no whitespace, no empty omitempty field, numbers and
// strings as encoding/json writes them. On anything else they give up and
// the strict encoding/json path (decodeJSON) decodes the message, so the
// fast path never changes what is accepted nor the errors returned: what it
// accepts, decodeJSON decodes to the same value. FuzzTaskCodec and
// FuzzCompletionCodec hold the two paths to that.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/flowstone-go/flowstone/internal/jsonw"
)

// ---- Encoding ----

// appendTask appends t as encodeJSON encodes it, reporting false where it
// cannot (having appended part of it).
func appendTask(dst []byte, t *Task) ([]byte, bool) {
	var ok bool
	dst = append(dst, `{"v":`...)
	dst = strconv.AppendInt(dst, int64(t.V), 10)
	dst = append(dst, `,"id":`...)
	dst = jsonw.String(dst, t.ID)
	dst = append(dst, `,"run_id":`...)
	dst = jsonw.String(dst, t.RunID)
	dst = append(dst, `,"pipeline":`...)
	dst = jsonw.String(dst, t.Pipeline)
	dst = append(dst, `,"asset":`...)
	dst = jsonw.String(dst, t.Asset)
	dst = append(dst, `,"partition":`...)
	dst = jsonw.String(dst, t.Partition)
	if t.Priority != 0 {
		dst = append(dst, `,"priority":`...)
		dst = strconv.AppendInt(dst, int64(t.Priority), 10)
	}
	if t.Force {
		dst = append(dst, `,"force":true`...)
	}
	if t.Storage != "" {
		dst = append(dst, `,"storage":`...)
		dst = jsonw.String(dst, t.Storage)
	}
	if t.TimeoutMS != 0 {
		dst = append(dst, `,"timeout_ms":`...)
		dst = strconv.AppendInt(dst, t.TimeoutMS, 10)
	}
	if t.Deadline != nil {
		dst = append(dst, `,"deadline":`...)
		if dst, ok = jsonw.Time(dst, *t.Deadline); !ok {
			return dst, false
		}
	}
	if len(t.Deps) > 0 {
		dst = append(dst, `,"deps":[`...)
		for i := range t.Deps {
			d := &t.Deps[i]
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"asset":`...)
			dst = jsonw.String(dst, d.Asset)
			dst = append(dst, `,"partition":`...)
			dst = jsonw.String(dst, d.Partition)
			dst = appendResultRef(dst, &d.ResultRef, true)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `,"attempt":`...)
	dst = strconv.AppendInt(dst, int64(t.Attempt), 10)
	dst = append(dst, `,"enqueued_at":`...)
	if dst, ok = jsonw.Time(dst, t.EnqueuedAt); !ok {
		return dst, false
	}
	if t.RecordRev != 0 {
		dst = append(dst, `,"record_rev":`...)
		dst = strconv.AppendUint(dst, t.RecordRev, 10)
	}
	if t.TraceParent != "" {
		dst = append(dst, `,"traceparent":`...)
		dst = jsonw.String(dst, t.TraceParent)
	}
	return append(dst, '}'), true
}

// appendResultRef appends r's non-empty fields, each after a comma when
// comma, else the first one without.
func appendResultRef(dst []byte, r *ResultRef, comma bool) []byte {
	field := func(dst []byte, name string) []byte {
		if comma {
			dst = append(dst, ',')
		}
		comma = true
		return append(dst, name...)
	}
	if r.ObjectKey != "" {
		dst = field(dst, `"object_key":`)
		dst = jsonw.String(dst, r.ObjectKey)
	}
	if r.Storage != "" {
		dst = field(dst, `"storage":`)
		dst = jsonw.String(dst, r.Storage)
	}
	if r.Size != 0 {
		dst = field(dst, `"size":`)
		dst = strconv.AppendInt(dst, r.Size, 10)
	}
	if r.SHA256 != "" {
		dst = field(dst, `"sha256":`)
		dst = jsonw.String(dst, r.SHA256)
	}
	if r.Encoding != "" {
		dst = field(dst, `"encoding":`)
		dst = jsonw.String(dst, string(r.Encoding))
	}
	if len(r.Inline) > 0 {
		dst = field(dst, `"inline":"`)
		dst = base64.StdEncoding.AppendEncode(dst, r.Inline)
		dst = append(dst, '"')
	}
	if r.ValueRunID != "" {
		dst = field(dst, `"value_run_id":`)
		dst = jsonw.String(dst, r.ValueRunID)
	}
	return dst
}

// appendCompletion appends c as encodeJSON encodes it, reporting false
// where it cannot (having appended part of it).
func appendCompletion(dst []byte, c *Completion) ([]byte, bool) {
	var ok bool
	dst = append(dst, `{"v":`...)
	dst = strconv.AppendInt(dst, int64(c.V), 10)
	dst = append(dst, `,"task_id":`...)
	dst = jsonw.String(dst, c.TaskID)
	dst = append(dst, `,"run_id":`...)
	dst = jsonw.String(dst, c.RunID)
	dst = append(dst, `,"pipeline":`...)
	dst = jsonw.String(dst, c.Pipeline)
	dst = append(dst, `,"asset":`...)
	dst = jsonw.String(dst, c.Asset)
	dst = append(dst, `,"partition":`...)
	dst = jsonw.String(dst, c.Partition)
	dst = append(dst, `,"ok":`...)
	dst = strconv.AppendBool(dst, c.OK)
	if c.Error != nil {
		dst = append(dst, `,"error":{"code":`...)
		dst = jsonw.String(dst, c.Error.Code)
		dst = append(dst, `,"message":`...)
		dst = jsonw.String(dst, c.Error.Message)
		if len(c.Error.Details) > 0 {
			dst = append(dst, `,"details":`...)
			if dst, ok = appendJSONObject(dst, c.Error.Details, metaExtras{}, 0); !ok {
				return dst, false
			}
		}
		dst = append(dst, '}')
	}
	dst = appendResultRef(dst, &c.ResultRef, true)
	dst = append(dst, `,"worker":`...)
	dst = jsonw.String(dst, c.Worker)
	dst = append(dst, `,"attempt":`...)
	dst = strconv.AppendInt(dst, int64(c.Attempt), 10)
	dst = append(dst, `,"started_at":`...)
	if dst, ok = jsonw.Time(dst, c.StartedAt); !ok {
		return dst, false
	}
	dst = append(dst, `,"finished_at":`...)
	if dst, ok = jsonw.Time(dst, c.FinishedAt); !ok {
		return dst, false
	}
	dst = append(dst, `,"duration_ms":`...)
	dst = strconv.AppendInt(dst, c.DurationMS, 10)
	return append(dst, '}'), true
}

// encodeFast validates v and encodes it with appendFn, or with encodeJSON
// where appendFn cannot or the result is over limit (for encodeJSON's
// errors).
func encodeFast[T validator](v *T, size int, appendFn func([]byte, *T) ([]byte, bool), limit int) ([]byte, *Error) {
	if err := (*v).Validate(); err != nil {
		return nil, err
	}
	if data, ok := appendFn(make([]byte, 0, size), v); ok && len(data) <= limit {
		return data, nil
	}
	return encodeJSON(*v, limit)
}

// taskSize guesses the length of t encoded, for the buffer.
func taskSize(t *Task) int {
	n := 200 + len(t.ID) + len(t.RunID) + len(t.Pipeline) + len(t.Asset) + len(t.Partition) + len(t.Storage) + len(t.TraceParent)
	for i := range t.Deps {
		d := &t.Deps[i]
		n += 120 + len(d.Asset) + len(d.Partition) + refSize(&d.ResultRef)
	}
	return n
}

func refSize(r *ResultRef) int {
	return len(r.ObjectKey) + len(r.Storage) + len(r.SHA256) + len(r.Encoding) + base64.StdEncoding.EncodedLen(len(r.Inline)) + len(r.ValueRunID) + 20
}

// completionSize guesses the length of c encoded, for the buffer.
func completionSize(c *Completion) int {
	n := 300 + len(c.TaskID) + len(c.RunID) + len(c.Pipeline) + len(c.Asset) + len(c.Partition) + len(c.Worker) + refSize(&c.ResultRef)
	if c.Error != nil {
		n += 64 + len(c.Error.Code) + len(c.Error.Message) + 32*len(c.Error.Details)
	}
	return n
}

// ---- Decoding ----

// canonical reports whether decodeJSON's own checks pass on data, so that
// a fast parse of it may stand for decodeJSON's.
func canonical(data []byte, limit int) bool {
	return len(data) > 0 && len(data) <= limit && utf8.Valid(data)
}

// decodeFast decodes data with parse when it is canonical, else with
// decodeJSON, and validates the result. On any failure it returns the zero
// T.
func decodeFast[T validator](data []byte, limit int, parse func(*parser, *T) bool) (T, *Error) {
	var v T
	if canonical(data, limit) {
		p := parser{data: data}
		if parse(&p, &v) && p.pos == len(data) {
			if err := v.Validate(); err != nil {
				var zero T
				return zero, err
			}
			return v, nil
		}
		v = *new(T)
	}
	return decodeValid[T](data, limit)
}

// parser reads the canonical form. Its methods report false on anything
// else, leaving pos anywhere.
type parser struct {
	data []byte
	pos  int
	// spans are the strings read and not yet copied out: flush copies
	// them all into one string, one allocation for the fields of an item.
	spans   []span
	spanBuf [12]span // the strings of a task up to its first dependency, or of a completion
}

// span is a string without escapes, data[a:b], for *dst.
type span struct {
	dst  *string
	a, b int
}

// strInto reads a string for *dst, set now if it has escapes, else at the
// next flush.
func (p *parser) strInto(dst *string) bool {
	d := p.data
	if p.pos >= len(d) || d[p.pos] != '"' {
		return false
	}
	start := p.pos + 1
	for i := start; i < len(d); i++ {
		switch c := d[i]; {
		case c == '"':
			p.pos = i + 1
			if p.spans == nil {
				p.spans = p.spanBuf[:0]
			}
			p.spans = append(p.spans, span{dst, start, i})
			return true
		case c == '\\':
			var ok bool
			*dst, ok = p.strEscaped(start, i)
			return ok
		case c < 0x20:
			return false
		}
	}
	return false
}

// nonEmptyInto reads a string that is not "" (an omitempty field
// present) for *dst.
func (p *parser) nonEmptyInto(dst *string) bool {
	if !p.strInto(dst) {
		return false
	}
	if n := len(p.spans); n > 0 && p.spans[n-1].dst == dst {
		return p.spans[n-1].b > p.spans[n-1].a
	}
	return *dst != ""
}

// flush sets the strings read since the last flush, from one copy of
// their bytes. The strings share that copy: holding one keeps the others'
// bytes (not the message's) alive.
func (p *parser) flush() {
	n := 0
	for _, s := range p.spans {
		n += s.b - s.a
	}
	var sb strings.Builder
	sb.Grow(n)
	for _, s := range p.spans {
		sb.Write(p.data[s.a:s.b])
	}
	all := sb.String()
	off := 0
	for _, s := range p.spans {
		*s.dst = all[off : off+s.b-s.a]
		off += s.b - s.a
	}
	p.spans = p.spans[:0]
}

// lit consumes s if the input continues with it.
func (p *parser) lit(s string) bool {
	if len(p.data)-p.pos >= len(s) && string(p.data[p.pos:p.pos+len(s)]) == s {
		p.pos += len(s)
		return true
	}
	return false
}

// strEscaped reads a string as encoding/json decodes it, from start, the
// first byte after its opening quote, to i, its first escape: it accepts
// the escapes but for surrogates (which encoding/json never writes). The
// input is valid UTF-8 (canonical checked it), so unescaped bytes stand as
// they are.
func (p *parser) strEscaped(start, i int) (string, bool) {
	d := p.data
	buf := make([]byte, 0, i-start+16)
	buf = append(buf, d[start:i]...)
	for i < len(d) {
		c := d[i]
		switch {
		case c == '"':
			p.pos = i + 1
			return string(buf), true
		case c < 0x20:
			return "", false
		case c != '\\':
			buf = append(buf, c)
			i++
			continue
		}
		if i+1 >= len(d) {
			return "", false
		}
		switch d[i+1] {
		case '"', '\\', '/':
			buf = append(buf, d[i+1])
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			if i+6 > len(d) {
				return "", false
			}
			r := rune(0)
			for _, h := range d[i+2 : i+6] {
				switch {
				case '0' <= h && h <= '9':
					h -= '0'
				case 'a' <= h && h <= 'f':
					h = h - 'a' + 10
				case 'A' <= h && h <= 'F':
					h = h - 'A' + 10
				default:
					return "", false
				}
				r = r<<4 | rune(h)
			}
			if 0xD800 <= r && r < 0xE000 {
				return "", false // surrogates: the slow path's
			}
			buf = utf8.AppendRune(buf, r)
			i += 6
			continue
		default:
			return "", false
		}
		i += 2
	}
	return "", false
}

// digits reads an integer as strconv.AppendInt writes it:
// -?(0|[1-9][0-9]*), of at most 19 digits (longer ones do not fit an int64:
// the slow path's). It returns the magnitude and the sign.
func (p *parser) digits() (uint64, bool, bool) {
	d := p.data
	i := p.pos
	neg := i < len(d) && d[i] == '-'
	if neg {
		i++
	}
	start := i
	var n uint64
	for i < len(d) && '0' <= d[i] && d[i] <= '9' {
		n = n*10 + uint64(d[i]-'0')
		i++
	}
	switch l := i - start; {
	case l == 0 || l > 19:
		return 0, false, false
	case d[start] == '0' && (l > 1 || neg):
		return 0, false, false // leading zero, -0
	}
	p.pos = i
	return n, neg, true
}

// int64 reads an integer in range.
func (p *parser) int64() (int64, bool) {
	n, neg, ok := p.digits()
	switch {
	case !ok:
		return 0, false
	case neg:
		return -int64(n), n <= 1<<63
	}
	return int64(n), n <= math.MaxInt64
}

// uint64 reads an unsigned integer as strconv.AppendUint writes it:
// 0|[1-9][0-9]*, in range.
func (p *parser) uint64() (uint64, bool) {
	d := p.data
	i := p.pos
	var n uint64
	for i < len(d) && '0' <= d[i] && d[i] <= '9' {
		c := uint64(d[i] - '0')
		if n > (math.MaxUint64-c)/10 {
			return 0, false // out of range: the slow path's error
		}
		n = n*10 + c
		i++
	}
	if i == p.pos || d[p.pos] == '0' && i-p.pos > 1 {
		return 0, false
	}
	p.pos = i
	return n, true
}

// int reads an integer that fits an int.
func (p *parser) int() (int, bool) {
	n, ok := p.int64()
	return int(n), ok && n >= math.MinInt && n <= math.MaxInt
}

// time reads a time as time.Time.UnmarshalJSON does: encoding/json gives it
// the string's raw bytes.
func (p *parser) time(t *time.Time) bool {
	d := p.data
	if p.pos >= len(d) || d[p.pos] != '"' {
		return false
	}
	end := bytes.IndexByte(d[p.pos+1:], '"')
	if end < 0 {
		return false
	}
	end += p.pos + 2
	raw := d[p.pos:end]
	if bytes.IndexByte(raw, '\\') >= 0 {
		return false
	}
	if t.UnmarshalJSON(raw) != nil {
		return false
	}
	p.pos = end
	return true
}

// bytes reads a non-empty base64 string as encoding/json decodes a []byte.
func (p *parser) base64() ([]byte, bool) {
	d := p.data
	if p.pos >= len(d) || d[p.pos] != '"' {
		return nil, false
	}
	start := p.pos + 1
	i := start
	for i < len(d) && isBase64Byte(d[i]) {
		i++
	}
	if i == start || i >= len(d) || d[i] != '"' {
		return nil, false
	}
	b := make([]byte, base64.StdEncoding.DecodedLen(i-start))
	n, err := base64.StdEncoding.Decode(b, d[start:i])
	if err != nil {
		return nil, false
	}
	p.pos = i + 1
	return b[:n], true
}

func isBase64Byte(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' || c == '='
}

// parseTask reads a task as appendTask writes it.
func parseTask(p *parser, t *Task) bool {
	var ok bool
	if !p.lit(`{"v":`) {
		return false
	}
	if t.V, ok = p.int(); !ok || !p.lit(`,"id":`) {
		return false
	}
	if !p.strInto(&t.ID) || !p.lit(`,"run_id":`) {
		return false
	}
	if !p.strInto(&t.RunID) || !p.lit(`,"pipeline":`) {
		return false
	}
	if !p.strInto(&t.Pipeline) || !p.lit(`,"asset":`) {
		return false
	}
	if !p.strInto(&t.Asset) || !p.lit(`,"partition":`) {
		return false
	}
	if !p.strInto(&t.Partition) {
		return false
	}
	if p.lit(`,"priority":`) {
		if t.Priority, ok = p.int(); !ok || t.Priority == 0 {
			return false
		}
	}
	if p.lit(`,"force":true`) {
		t.Force = true
	}
	if p.lit(`,"storage":`) {
		if !p.nonEmptyInto(&t.Storage) {
			return false
		}
	}
	if p.lit(`,"timeout_ms":`) {
		if t.TimeoutMS, ok = p.int64(); !ok || t.TimeoutMS == 0 {
			return false
		}
	}
	if p.lit(`,"deadline":`) {
		t.Deadline = new(time.Time)
		if !p.time(t.Deadline) {
			return false
		}
	}
	if p.lit(`,"deps":[`) {
		for {
			var d DepRef
			if !parseDep(p, &d) {
				return false
			}
			t.Deps = append(t.Deps, d)
			if p.lit(`]`) {
				break
			}
			if !p.lit(`,`) {
				return false
			}
		}
	}
	if !p.lit(`,"attempt":`) {
		return false
	}
	if t.Attempt, ok = p.int(); !ok || !p.lit(`,"enqueued_at":`) || !p.time(&t.EnqueuedAt) {
		return false
	}
	if p.lit(`,"record_rev":`) {
		if t.RecordRev, ok = p.uint64(); !ok || t.RecordRev == 0 {
			return false
		}
	}
	if p.lit(`,"traceparent":`) {
		if !p.nonEmptyInto(&t.TraceParent) {
			return false
		}
	}
	if !p.lit(`}`) {
		return false
	}
	p.flush()
	return true
}

func parseDep(p *parser, d *DepRef) bool {
	if !p.lit(`{"asset":`) {
		return false
	}
	if !p.strInto(&d.Asset) || !p.lit(`,"partition":`) {
		return false
	}
	if !p.strInto(&d.Partition) || !parseResultRef(p, &d.ResultRef) {
		return false
	}
	if !p.lit(`}`) {
		return false
	}
	p.flush() // before the dependency is copied
	return true
}

// parseResultRef reads the fields appendResultRef writes after a comma.
func parseResultRef(p *parser, r *ResultRef) bool {
	var ok bool
	if p.lit(`,"object_key":`) {
		if !p.nonEmptyInto(&r.ObjectKey) {
			return false
		}
	}
	if p.lit(`,"storage":`) {
		if !p.nonEmptyInto(&r.Storage) {
			return false
		}
	}
	if p.lit(`,"size":`) {
		if r.Size, ok = p.int64(); !ok || r.Size == 0 {
			return false
		}
	}
	if p.lit(`,"sha256":`) {
		if !p.nonEmptyInto(&r.SHA256) {
			return false
		}
	}
	if p.lit(`,"encoding":`) {
		if !p.nonEmptyInto((*string)(&r.Encoding)) {
			return false
		}
	}
	if p.lit(`,"inline":`) {
		if r.Inline, ok = p.base64(); !ok {
			return false
		}
	}
	if p.lit(`,"value_run_id":`) {
		if !p.nonEmptyInto(&r.ValueRunID) {
			return false
		}
	}
	return true
}

// parseCompletion reads a completion as appendCompletion writes it.
func parseCompletion(p *parser, c *Completion) bool {
	var ok bool
	if !p.lit(`{"v":`) {
		return false
	}
	if c.V, ok = p.int(); !ok || !p.lit(`,"task_id":`) {
		return false
	}
	if !p.strInto(&c.TaskID) || !p.lit(`,"run_id":`) {
		return false
	}
	if !p.strInto(&c.RunID) || !p.lit(`,"pipeline":`) {
		return false
	}
	if !p.strInto(&c.Pipeline) || !p.lit(`,"asset":`) {
		return false
	}
	if !p.strInto(&c.Asset) || !p.lit(`,"partition":`) {
		return false
	}
	if !p.strInto(&c.Partition) || !p.lit(`,"ok":`) {
		return false
	}
	switch {
	case p.lit(`true`):
		c.OK = true
	case !p.lit(`false`):
		return false
	}
	if p.lit(`,"error":{"code":`) {
		c.Error = new(Error)
		if !p.strInto(&c.Error.Code) || !p.lit(`,"message":`) {
			return false
		}
		if !p.strInto(&c.Error.Message) {
			return false
		}
		if p.lit(`,"details":`) && !p.details(&c.Error.Details) {
			return false
		}
		if !p.lit(`}`) {
			return false
		}
	}
	if !parseResultRef(p, &c.ResultRef) || !p.lit(`,"worker":`) {
		return false
	}
	if !p.strInto(&c.Worker) || !p.lit(`,"attempt":`) {
		return false
	}
	if c.Attempt, ok = p.int(); !ok || !p.lit(`,"started_at":`) || !p.time(&c.StartedAt) {
		return false
	}
	if !p.lit(`,"finished_at":`) || !p.time(&c.FinishedAt) || !p.lit(`,"duration_ms":`) {
		return false
	}
	if c.DurationMS, ok = p.int64(); !ok {
		return false
	}
	if !p.lit(`}`) {
		return false
	}
	p.flush()
	return true
}

// details reads an error's details object with encoding/json, as the slow
// path decodes it into the map.
func (p *parser) details(m *map[string]any) bool {
	if p.pos >= len(p.data) || p.data[p.pos] != '{' {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(p.data[p.pos:]))
	if dec.Decode(m) != nil {
		return false
	}
	end := p.pos + int(dec.InputOffset())
	// encoding/json refuses nesting past 10000 levels, counted from the
	// message: leave deep details to the slow path, which counts that way.
	if nestingOver(p.data[p.pos:end], 1000) {
		return false
	}
	p.pos = end
	return true
}

// nestingOver reports whether the JSON value v nests arrays and objects
// more than limit deep.
func nestingOver(v []byte, limit int) bool {
	depth := 0
	inString := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case inString && c == '\\':
			i++
		case inString:
			inString = c != '"'
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			if depth++; depth > limit {
				return true
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return false
}

// parseTaskBatch reads a task batch as JoinTaskBatch writes it.
func parseTaskBatch(p *parser, b *TaskBatch) bool {
	var ok bool
	if !p.lit(`{"v":`) {
		return false
	}
	if b.V, ok = p.int(); !ok || !p.lit(`,"tasks":[`) {
		return false
	}
	b.Tasks = make([]Task, 0, min(MaxBatchItems, 1+len(p.data)/400))
	for {
		b.Tasks = append(b.Tasks, Task{})
		if !parseTask(p, &b.Tasks[len(b.Tasks)-1]) {
			return false
		}
		if p.lit(`]}`) {
			return true
		}
		if !p.lit(`,`) {
			return false
		}
	}
}

// parseCompletionBatch reads a completion batch as JoinCompletionBatch
// writes it.
func parseCompletionBatch(p *parser, b *CompletionBatch) bool {
	var ok bool
	if !p.lit(`{"v":`) {
		return false
	}
	if b.V, ok = p.int(); !ok || !p.lit(`,"completions":[`) {
		return false
	}
	b.Completions = make([]Completion, 0, min(MaxBatchItems, 1+len(p.data)/400))
	for {
		b.Completions = append(b.Completions, Completion{})
		if !parseCompletion(p, &b.Completions[len(b.Completions)-1]) {
			return false
		}
		if p.lit(`]}`) {
			return true
		}
		if !p.lit(`,`) {
			return false
		}
	}
}
