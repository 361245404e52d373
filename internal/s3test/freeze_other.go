//go:build !unix

package s3test

import "errors"

// Freeze would suspend the gateway; it needs SIGSTOP, which only Unix has.
func (s *Server) Freeze() error { return errors.ErrUnsupported }

// Thaw would resume a frozen gateway.
func (s *Server) Thaw() error { return errors.ErrUnsupported }
