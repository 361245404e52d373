package protocol

import "fmt"

// Error codes. The first eight equal the library's error types, so an error
// raised by an asset on a worker reaches the client with the same code; the
// rest name what only a network service can get wrong. Receivers must accept
// codes they do not know (treat them like CodeInternal): a new library error
// type is not a protocol change.
const (
	// CodeAssetNotFound: the asset does not exist in the pipeline.
	CodeAssetNotFound = "asset_not_found"
	// CodeDependencyFailed: an upstream asset failed or is not materialized.
	CodeDependencyFailed = "dependency_failed"
	// CodeConfigError: missing or invalid configuration.
	CodeConfigError = "config_error"
	// CodeStorageError: the metadata or object store failed.
	CodeStorageError = "storage_error"
	// CodeTimeout: the asset or the run took longer than allowed.
	CodeTimeout = "timeout"
	// CodeCancelled: the execution was cancelled.
	CodeCancelled = "cancelled"
	// CodeScatterThreshold: too many items of a scatter asset failed.
	CodeScatterThreshold = "scatter_threshold"
	// CodeExecutionFailed: the asset's function returned an error or panicked.
	CodeExecutionFailed = "execution_failed"
	// CodeRejected: an asset's gate was rejected; the library's
	// TypeRejected.
	CodeRejected = "rejected"

	// CodeBadRequest: a message is malformed or a field is invalid;
	// Details["field"] names the field when one is at fault.
	CodeBadRequest = "bad_request"
	// CodeUnsupportedVersion: the message's "v" is not Version;
	// Details["got"] and Details["want"] give both.
	CodeUnsupportedVersion = "unsupported_version"
	// CodePayloadTooLarge: the message exceeds MaxRequestBytes or
	// MaxMessageBytes; Details["size"] and Details["limit"] give both.
	CodePayloadTooLarge = "payload_too_large"
	// CodePipelineNotFound: no worker hosts a pipeline of that name.
	CodePipelineNotFound = "pipeline_not_found"
	// CodeNotFound: the asset exists but has no result for the partition
	// (a get before any run).
	CodeNotFound = "not_found"
	// CodeInternal: the service failed in a way the caller cannot fix.
	CodeInternal = "internal"
	// CodeUnavailable: the fleet, or a part it needs, cannot be reached.
	CodeUnavailable = "unavailable"
)

// maxCodeBytes bounds an error code on the wire.
const maxCodeBytes = 64

// Error is a structured error as it crosses the wire: the library's
// flowstone.Error with Type named Code. Message says what went wrong and
// what to do; Details carries the same facts for programs.
type Error struct {
	// Code is one of the Code constants (or a newer one).
	Code string `json:"code"`
	// Message is for people: what is wrong and what to do about it.
	Message string `json:"message"`
	// Details holds the facts behind the message, JSON-typed.
	Details map[string]any `json:"details,omitempty"`
}

// Errorf returns an *Error with code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Error returns "code: message".
func (e *Error) Error() string {
	if e.Message == "" {
		return e.Code
	}
	return e.Code + ": " + e.Message
}

// Is reports whether target is an *Error with the same code and no message,
// so errors.Is(err, &protocol.Error{Code: protocol.CodeTimeout}) matches any
// timeout.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Message == "" && t.Code == e.Code
}

// Validate checks an error received from the wire: its code must be a
// snake_case word of at most 64 bytes.
func (e *Error) Validate() *Error {
	return e.validate("error")
}

func (e *Error) validate(field string) *Error {
	if !validCode(e.Code) {
		return fieldErrorf(field+".code", "error code %s is not a snake_case word of 1-%d bytes", quote(e.Code), maxCodeBytes)
	}
	if err := checkText(field+".message", e.Message); err != nil {
		return err
	}
	return nil
}

func validCode(s string) bool {
	if len(s) == 0 || len(s) > maxCodeBytes || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// fieldErrorf is a CodeBadRequest error naming the field at fault.
func fieldErrorf(field, format string, args ...any) *Error {
	e := Errorf(CodeBadRequest, format, args...)
	e.Details = map[string]any{"field": field}
	return e
}
