package flowstone

import (
	"errors"
	"fmt"
)

// ErrorType classifies an Error. Its text form is the API proposal's name
// ("asset_not_found", ...), and it is the error code on the fleet's wire, so
// an error crosses from a worker to a client unchanged.
type ErrorType string

// The error types. The first seven are the API proposal's; the others are
// the conditions a Go API and a network service also have to name.
const (
	// TypeAssetNotFound: the asset does not exist in the pipeline.
	TypeAssetNotFound ErrorType = "asset_not_found"
	// TypeDependencyFailed: an upstream asset failed or is not materialized.
	TypeDependencyFailed ErrorType = "dependency_failed"
	// TypeConfigError: missing or invalid configuration, pipeline definitions
	// included.
	TypeConfigError ErrorType = "config_error"
	// TypeStorageError: the metadata or object store failed.
	TypeStorageError ErrorType = "storage_error"
	// TypeTimeout: the asset or the run took longer than allowed.
	TypeTimeout ErrorType = "timeout"
	// TypeCancelled: the execution was cancelled.
	TypeCancelled ErrorType = "cancelled"
	// TypeScatterThreshold: too many items of a scatter asset failed.
	TypeScatterThreshold ErrorType = "scatter_threshold"
	// TypeExecutionFailed: the asset's function returned an error or panicked.
	TypeExecutionFailed ErrorType = "execution_failed"
	// TypeNotFound: the asset exists but has no materialized result for the
	// partition.
	TypeNotFound ErrorType = "not_found"
	// TypePipelineNotFound: no pipeline of that name is known (fleet).
	TypePipelineNotFound ErrorType = "pipeline_not_found"
	// TypeBadRequest: an argument is invalid (a partition, a priority, a
	// malformed request on the wire).
	TypeBadRequest ErrorType = "bad_request"
	// TypeUnavailable: the fleet cannot be reached.
	TypeUnavailable ErrorType = "unavailable"
	// TypeRejected: an asset's gate was rejected (Reject): the asset did
	// not run, and its dependents fail with TypeDependencyFailed naming
	// it.
	TypeRejected ErrorType = "rejected"
	// TypeInternal: the fleet failed in a way the caller cannot fix: a
	// coordinator's own failure (a bug it recovered from), or a reply that
	// is not a FlowStone reply. Nothing the request named is at fault;
	// report it with the details.
	TypeInternal ErrorType = "internal"
)

// String returns the type's wire name.
func (t ErrorType) String() string { return string(t) }

// Error is every error FlowStone returns on purpose: a type to branch on, a
// message that says what went wrong and what to do, and details for programs.
//
// Match a type with errors.Is against the sentinels (errors.Is(err,
// flowstone.ErrAssetNotFound)) and read the fields with errors.As.
type Error struct {
	Type    ErrorType      `json:"type"`
	Message string         `json:"message"`
	Details map[string]any `json:"details,omitempty"`
	// cause is a wrapped Go error (a store error, a context error), kept
	// for errors.Is/As in process; it does not cross the wire.
	cause error
}

// Error returns the message, prefixed with the type.
func (e *Error) Error() string {
	if e.Message == "" {
		return string(e.Type)
	}
	return string(e.Type) + ": " + e.Message
}

// Is reports whether target is an *Error sentinel of the same type. A
// sentinel is an *Error with an empty message.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Message == "" && t.Type == e.Type
}

// Unwrap returns the Go error this one wraps, if any.
func (e *Error) Unwrap() error { return e.cause }

// Sentinels, one per type, for errors.Is.
var (
	ErrAssetNotFound    = &Error{Type: TypeAssetNotFound}
	ErrDependencyFailed = &Error{Type: TypeDependencyFailed}
	ErrConfig           = &Error{Type: TypeConfigError}
	ErrStorage          = &Error{Type: TypeStorageError}
	ErrTimeout          = &Error{Type: TypeTimeout}
	ErrCancelled        = &Error{Type: TypeCancelled}
	ErrScatterThreshold = &Error{Type: TypeScatterThreshold}
	ErrExecutionFailed  = &Error{Type: TypeExecutionFailed}
	ErrNotFound         = &Error{Type: TypeNotFound}
	ErrPipelineNotFound = &Error{Type: TypePipelineNotFound}
	ErrBadRequest       = &Error{Type: TypeBadRequest}
	ErrUnavailable      = &Error{Type: TypeUnavailable}
	ErrRejected         = &Error{Type: TypeRejected}
	ErrInternal         = &Error{Type: TypeInternal}
)

// newError builds an *Error with a formatted message.
func newError(t ErrorType, details map[string]any, format string, args ...any) *Error {
	return &Error{Type: t, Message: fmt.Sprintf(format, args...), Details: details}
}

// wrapError builds an *Error that wraps cause.
func wrapError(t ErrorType, cause error, details map[string]any, format string, args ...any) *Error {
	e := newError(t, details, format, args...)
	e.cause = cause
	return e
}

// AsError returns err as an *Error: itself if it is one (or wraps one),
// otherwise an ExecutionFailed error carrying err's text.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var fe *Error
	if errors.As(err, &fe) {
		return fe
	}
	return &Error{Type: TypeExecutionFailed, Message: err.Error(), cause: err}
}
