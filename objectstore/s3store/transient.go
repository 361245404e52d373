package s3store

import (
	"errors"
	"net/http"

	"github.com/minio/minio-go/v7"

	"github.com/flowstone-go/flowstone/internal/transient"
)

// transientCodes are the S3 error codes of a server that is overloaded,
// restarting or briefly unable to serve: the same request may succeed a
// little later.
var transientCodes = map[string]bool{
	"SlowDown":                   true,
	"RequestTimeout":             true, // 400: the connection went idle mid-request
	"ServiceUnavailable":         true,
	"InternalError":              true,
	"OperationAborted":           true, // 409: a conflicting operation is in progress
	"XMinioServerNotInitialized": true,
}

// markTransient marks err for transient.Is if it is an S3 error response
// worth retrying: a 5xx other than 501, a 429, or one of transientCodes.
// Network errors need no mark: transient.Is knows them.
func markTransient(err error) error {
	var resp minio.ErrorResponse
	if !errors.As(err, &resp) {
		return err
	}
	switch {
	case transientCodes[resp.Code],
		resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented,
		resp.StatusCode == http.StatusTooManyRequests:
		return transient.Mark(err)
	}
	return err
}
