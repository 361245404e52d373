package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"unicode/utf8"
)

// validator is every message type: it can check itself.
type validator interface {
	Validate() *Error
}

// decodeValid decodes data into a T and validates it. On any failure it
// returns the zero T.
func decodeValid[T validator](data []byte, limit int) (T, *Error) {
	var v T
	if err := decodeJSON(data, limit, &v); err != nil {
		var zero T
		return zero, err
	}
	if err := v.Validate(); err != nil {
		var zero T
		return zero, err
	}
	return v, nil
}

// encodeValid validates v and encodes it.
func encodeValid(v validator, limit int) ([]byte, *Error) {
	if err := v.Validate(); err != nil {
		return nil, err
	}
	return encodeJSON(v, limit)
}

// decodeJSON strictly decodes one JSON object into v. When that fails, the
// version is read on its own, so that a message from a newer peer is
// refused for its version rather than for fields this side does not know.
// (On success the caller's Validate checks the version.)
func decodeJSON(data []byte, limit int, v any) *Error {
	switch {
	case len(data) == 0:
		return Errorf(CodeBadRequest, "empty message: send a JSON object with \"v\": %d", Version)
	case len(data) > limit:
		e := Errorf(CodePayloadTooLarge, "message is %d bytes; the limit is %d", len(data), limit)
		e.Details = map[string]any{"size": len(data), "limit": limit}
		return e
	case !utf8.Valid(data):
		return Errorf(CodeBadRequest, "message is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, err := dec.Token(); err != io.EOF {
			return Errorf(CodeBadRequest, "message has data after its JSON object: send exactly one object")
		}
		return nil
	}
	var head struct {
		V *int `json:"v"`
	}
	if herr := json.Unmarshal(data, &head); herr != nil {
		return jsonError(herr)
	}
	if head.V == nil {
		return versionError(0)
	}
	if verr := checkVersion(*head.V); verr != nil {
		return verr
	}
	return jsonError(err)
}

// encodeJSON encodes v without HTML escaping (the wire is not HTML, and
// escaping would let a message grow past the limit on re-encoding).
func encodeJSON(v any, limit int) ([]byte, *Error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, Errorf(CodeBadRequest, "cannot encode %T: %v", v, err)
	}
	data := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if len(data) > limit {
		e := Errorf(CodePayloadTooLarge, "encoded %T is %d bytes; the limit is %d: send less, or store it and send a reference", v, len(data), limit)
		e.Details = map[string]any{"size": len(data), "limit": limit}
		return nil, e
	}
	return data, nil
}

func checkVersion(v int) *Error {
	if v != Version {
		return versionError(v)
	}
	return nil
}

func versionError(got int) *Error {
	var e *Error
	if got == 0 {
		e = Errorf(CodeUnsupportedVersion, "message has no protocol version (\"v\"); this side speaks version %d", Version)
	} else {
		e = Errorf(CodeUnsupportedVersion, "protocol version %d is not supported; this side speaks version %d: run the same FlowStone release on both sides", got, Version)
	}
	e.Details = map[string]any{"field": "v", "got": got, "want": Version}
	return e
}

// jsonError turns an encoding/json error into a CodeBadRequest naming the
// field when it can.
func jsonError(err error) *Error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return Errorf(CodeBadRequest, "malformed JSON at byte %d: %s", syn.Offset, syn.Error())
	case errors.As(err, &typ):
		if typ.Field == "" {
			return Errorf(CodeBadRequest, "message must be a JSON object, not %s", typ.Value)
		}
		want := jsonKind(typ.Type)
		if strings.HasPrefix(typ.Value, "number") && (want == "an integer" || want == "a number") {
			want += " in range" // the value is a number, just not one that fits
		}
		return fieldErrorf(typ.Field, "%s must be %s, not %s", typ.Field, want, typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return Errorf(CodeBadRequest, "malformed JSON: the message ends early")
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if name, ok := strings.CutPrefix(msg, "unknown field "); ok {
		field := strings.Trim(name, `"`)
		return fieldErrorf(field, "unknown field %s: protocol version %d has no such field; check its spelling", name, Version)
	}
	return Errorf(CodeBadRequest, "invalid message: %s", msg)
}

// jsonKind names the JSON type a Go type decodes from.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "a boolean"
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return "an object"
}
