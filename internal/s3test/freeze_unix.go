//go:build unix

package s3test

import (
	"errors"
	"syscall"
)

// Freeze suspends the gateway (SIGSTOP) without killing it: it keeps its
// port, the kernel still accepts connections for it, and nothing answers,
// as with a hung server. Thaw resumes it; the test's end kills it either
// way.
func (s *Server) Freeze() error { return s.signal(syscall.SIGSTOP) }

// Thaw resumes a frozen gateway (SIGCONT).
func (s *Server) Thaw() error { return s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.g == nil {
		return errors.New("s3test: the server is stopped")
	}
	return s.g.cmd.Process.Signal(sig)
}
