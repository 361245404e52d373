package protocol

// Reply is the envelope of every API reply: the version and exactly one of
// OK (the verb's result) or Error.
//
//	{"v":1,"ok":{"run_id":"...","asset":"sum","partition":"default"}}
//	{"v":1,"error":{"code":"asset_not_found","message":"..."}}
type Reply[T ReplyBody] struct {
	// V is the protocol version, Version.
	V int `json:"v"`
	// OK is the result when the request succeeded.
	OK *T `json:"ok,omitempty"`
	// Error is why the request failed.
	Error *Error `json:"error,omitempty"`
}

// ReplyBody is the result of one verb, the OK side of a Reply. Only this
// package's reply types implement it.
type ReplyBody interface {
	// Validate checks every field, as DecodeReply does.
	Validate() *Error
	isReply()
}

// Validate checks the envelope and whichever side it carries.
func (r Reply[T]) Validate() *Error {
	if err := checkVersion(r.V); err != nil {
		return err
	}
	switch {
	case (r.OK == nil) == (r.Error == nil):
		return Errorf(CodeBadRequest, "reply must carry exactly one of \"ok\" and \"error\"")
	case r.Error != nil:
		return r.Error.validate("error")
	}
	return (*r.OK).Validate()
}

// maxFallbackMessageBytes is how much of an error message survives when the
// whole error does not fit in a reply (JSON escaping may grow it sixfold).
const maxFallbackMessageBytes = 64 << 10

// EncodeReply encodes the reply to a request: result when err is nil,
// otherwise err. It never fails, so a handler always has something to send:
// a result that does not validate, or that exceeds MaxMessageBytes, is
// replaced by the error saying so (a bug in the replying side, reported to
// the caller instead of a malformed reply).
func EncodeReply[T ReplyBody](result T, err *Error) []byte {
	if err != nil {
		return EncodeError(err)
	}
	data, bad := encodeValid(Reply[T]{V: Version, OK: &result}, MaxMessageBytes)
	if bad != nil {
		wrapped := Errorf(CodeInternal, "the service built a reply it cannot send: %s", bad.Message)
		if bad.Code == CodePayloadTooLarge {
			wrapped = bad
		}
		return EncodeError(wrapped)
	}
	return data
}

// EncodeError encodes a failed reply; it is the reply to any verb. An err
// with an invalid code is sent as CodeInternal with the same message.
func EncodeError(err *Error) []byte {
	if err == nil || err.validate("error") != nil {
		e := &Error{Code: CodeInternal, Message: "the service failed without a valid error"}
		if err != nil && checkText("message", err.Message) == nil {
			e.Message = err.Message
			e.Details = err.Details
		}
		err = e
	}
	// With only Error set, the OK type does not reach the wire: any will do.
	data, bad := encodeJSON(Reply[ExistsReply]{V: Version, Error: err}, MaxMessageBytes)
	if bad != nil {
		// Details that cannot be encoded, or too much text, are dropped;
		// the code and the start of the message always fit.
		short := &Error{Code: err.Code, Message: cut(err.Message, maxFallbackMessageBytes)}
		data, _ = encodeJSON(Reply[ExistsReply]{V: Version, Error: short}, MaxMessageBytes)
	}
	return data
}

// DecodeReply decodes a reply carrying a T. It returns the result, or the
// error the reply carries, or a CodeBadRequest / CodeUnsupportedVersion /
// CodePayloadTooLarge error if the reply itself is not acceptable (the
// rules of DecodeRequest, with MaxMessageBytes).
func DecodeReply[T ReplyBody](data []byte) (T, *Error) {
	var zero T
	r, err := decodeValid[Reply[T]](data, MaxMessageBytes)
	if err != nil {
		return zero, err
	}
	if r.Error != nil {
		return zero, r.Error
	}
	return *r.OK, nil
}
