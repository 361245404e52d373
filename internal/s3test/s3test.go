// Package s3test starts real S3 servers for tests: a versitygw gateway with
// its POSIX backend in a temp dir, on a random loopback port, with root keys
// made up per server, killed when the test ends.
//
// The versitygw binary comes from, in order: the FLOWSTONE_VERSITYGW
// environment variable, versitygw on PATH, or a copy built once with
// `go install` into the user cache dir (see Binary).
package s3test

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// Region is the region every Server reports.
const Region = "us-east-1"

// startTimeout bounds how long a server may take to answer its first
// request.
const startTimeout = 30 * time.Second

// Server is a running versitygw gateway.
type Server struct {
	// Endpoint is host:port, without a scheme; the server speaks plain HTTP,
	// or https if started with StartTLS.
	Endpoint string
	// AccessKey is the root user's access key.
	AccessKey string
	// SecretKey is the root user's secret key.
	SecretKey string
	// Region is the server's region, always Region.
	Region string
	// Dir is the directory the POSIX backend keeps buckets in.
	Dir string

	// TLS is how the server serves https; nil for plain HTTP.
	TLS *TLS

	bin string
	out *lockedBuffer // what the gateway runs stopped so far printed
	mu  sync.Mutex
	g   *gateway // nil while stopped
}

// TLS makes a gateway serve https (versitygw --cert and --key).
type TLS struct {
	// CertFile and KeyFile are the server's certificate and key, PEM.
	CertFile, KeyFile string
	// RootCAs verify the certificate when the gateway is probed for
	// readiness.
	RootCAs *x509.CertPool
}

// Start starts a gateway over a fresh temp dir and returns once it answers
// requests. It is killed when the test ends; if the test failed, the
// gateway's output is logged.
func Start(t testing.TB) *Server {
	t.Helper()
	return start(t, nil)
}

// StartTLS starts a gateway as Start does, serving https with tc's
// certificate.
func StartTLS(t testing.TB, tc TLS) *Server {
	t.Helper()
	return start(t, &tc)
}

func start(t testing.TB, tc *TLS) *Server {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()
	srv := &Server{
		AccessKey: "AK" + strings.ToUpper(rand.Text()[:18]),
		SecretKey: rand.Text() + rand.Text()[:14],
		Region:    Region,
		Dir:       dir,
		TLS:       tc,
		bin:       bin,
		out:       &lockedBuffer{},
	}
	// A free port can be taken by someone else before the gateway binds it:
	// then try another.
	var lastErr error
	for range 3 {
		srv.Endpoint = freeLoopbackAddr(t)
		g, err := startGateway(bin, srv)
		if err == nil {
			srv.g = g
			t.Cleanup(func() {
				srv.Stop()
				if t.Failed() {
					t.Logf("s3test: versitygw on %s said:\n%s", srv.Endpoint, srv.out.String())
				}
			})
			return srv
		}
		lastErr = err
		if !errors.Is(err, errAddrInUse) {
			break
		}
	}
	t.Fatalf("s3test: %v", lastErr)
	return nil
}

var errAddrInUse = errors.New("address already in use")

// Stop kills the gateway, as a crash would, and waits until it is gone;
// its data dir stays. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.g != nil {
		s.g.stop()
		s.out.Write([]byte(s.g.out.String()))
		s.g = nil
	}
}

// Start starts the gateway again on the same endpoint, with the same keys
// and data dir, and returns once it answers requests. Starting a running
// server does nothing.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.g != nil {
		return nil
	}
	g, err := startGateway(s.bin, s)
	if err != nil {
		return fmt.Errorf("s3test: restart: %w", err)
	}
	s.g = g
	return nil
}

// gateway is a versitygw process and the goroutine waiting for it.
type gateway struct {
	cmd    *exec.Cmd
	out    *lockedBuffer
	exited chan struct{}
}

func startGateway(bin string, srv *Server) (*gateway, error) {
	args := []string{
		"--port", srv.Endpoint,
		"--access", srv.AccessKey,
		"--secret", srv.SecretKey,
		"--region", srv.Region,
		"--quiet",
	}
	if srv.TLS != nil {
		args = append(args, "--cert", srv.TLS.CertFile, "--key", srv.TLS.KeyFile)
	}
	cmd := exec.Command(bin, append(args, "posix", srv.Dir)...)
	cmd.Env = gatewayEnv()
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	g := &gateway{cmd: cmd, out: out, exited: make(chan struct{})}
	go func() {
		defer close(g.exited)
		cmd.Wait()
	}()
	if err := g.waitReady(srv.Endpoint, srv.TLS); err != nil {
		g.stop()
		return nil, err
	}
	return g, nil
}

// waitReady polls until the gateway answers an HTTP request as versitygw,
// which also proves that nobody else holds the port.
func (g *gateway) waitReady(addr string, tc *TLS) error {
	deadline := time.NewTimer(startTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	client := &http.Client{Timeout: time.Second}
	scheme := "http://"
	if tc != nil {
		scheme = "https://"
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: tc.RootCAs, MinVersion: tls.VersionTLS12}}
	}
	defer client.CloseIdleConnections()
	for {
		select {
		case <-g.exited:
			out := g.out.String()
			if strings.Contains(out, "address already in use") {
				return fmt.Errorf("versitygw on %s: %w", addr, errAddrInUse)
			}
			return fmt.Errorf("versitygw on %s exited before it was ready (%v):\n%s", addr, g.cmd.ProcessState, out)
		case <-deadline.C:
			return fmt.Errorf("versitygw on %s not ready after %v:\n%s", addr, startTimeout, g.out.String())
		case <-tick.C:
			resp, err := client.Get(scheme + addr + "/")
			if err != nil {
				continue
			}
			resp.Body.Close()
			if server := resp.Header.Get("Server"); server != "VERSITYGW" {
				return fmt.Errorf("%s is answered by %q, not versitygw: %w", addr, server, errAddrInUse)
			}
			return nil
		}
	}
}

func (g *gateway) stop() {
	g.cmd.Process.Kill()
	<-g.exited
}

// gatewayEnv is this process's environment without the variables that
// would reconfigure versitygw behind the flags' back.
func gatewayEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "VGW_") || strings.HasPrefix(kv, "ROOT_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func freeLoopbackAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("s3test: find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

// lockedBuffer collects a process's output while tests may read it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
