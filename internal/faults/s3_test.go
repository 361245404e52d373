//go:build faults

package faults

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/internal/s3test"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// s3Region is the region the S3 server reports and the fleet uses.
const s3Region = "us-east-1"

// s3Server is a versitygw process over a POSIX directory. It keeps its
// address, keys and data across restarts.
type s3Server struct {
	binPath  string
	endpoint string // host:port, plain HTTP
	access   string
	secret   string
	dir      string
	gen      int
	p        *proc
}

// startS3 starts versitygw with its buckets under dataDir and waits until
// it answers.
func startS3(t *testing.T, dataDir, logDir string) *s3Server {
	t.Helper()
	s := &s3Server{binPath: s3test.Binary(t), endpoint: "127.0.0.1:" + strconv.Itoa(freePort(t)),
		access: "FAULTSACCESSKEY", secret: "faults-secret-key-not-a-secret", dir: filepath.Join(dataDir, "s3")}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := s.start(t, logDir); err != nil {
		t.Fatal(err)
	}
	// Five daemons starting at once each create the bucket if it is
	// missing, and versitygw answers some of them with a 500 (see
	// RELIABILITY.md); an operator's bucket exists before the fleet starts.
	c, err := minio.New(s.endpoint, &minio.Options{Creds: credentials.NewStaticV4(s.access, s.secret, ""), Region: s3Region})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), callWait)
	defer cancel()
	if err := c.MakeBucket(ctx, s3Bucket, minio.MakeBucketOptions{Region: s3Region}); err != nil {
		t.Fatalf("create bucket %s: %v", s3Bucket, err)
	}
	return s
}

// start starts (or restarts) the server and waits until it answers.
func (s *s3Server) start(t *testing.T, logDir string) error {
	s.gen++
	cmd := exec.Command(s.binPath, "--port", s.endpoint, "--access", s.access, "--secret", s.secret, "--region", s3Region,
		"--quiet", "posix", s.dir)
	// versitygw reads VGW_ and ROOT_ variables behind its flags' back.
	cmd.Env = gatewayEnv()
	p, err := startProc(t, logDir, fmt.Sprintf("s3-g%d", s.gen), false, cmd)
	if err != nil {
		return err
	}
	s.p = p
	return s.waitReady()
}

// waitReady polls until the server answers as versitygw.
func (s *s3Server) waitReady() error {
	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(readyWait)
	for time.Now().Before(deadline) {
		if !s.p.running() {
			return fmt.Errorf("%s exited while starting (%v); see %s", s.p.name, s.p.err, s.p.logPath)
		}
		resp, err := client.Get("http://" + s.endpoint + "/")
		if err == nil {
			resp.Body.Close()
			if server := resp.Header.Get("Server"); server != "VERSITYGW" {
				return fmt.Errorf("%s is answered by %q, not versitygw", s.endpoint, server)
			}
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("versitygw on %s not ready after %v; see %s", s.endpoint, readyWait, s.p.logPath)
}

// flags are the daemons' flags for this server.
func (s *s3Server) flags() []string {
	return []string{"--s3-endpoint", s.endpoint, "--s3-access-key", s.access, "--s3-secret-key", s.secret,
		"--s3-region", s3Region, "--s3-bucket", s3Bucket}
}

// s3Bucket is the bucket the fleet keeps results in.
const s3Bucket = "flowstone-faults"

// gatewayEnv is the environment without versitygw's own variables.
func gatewayEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VGW_") && !strings.HasPrefix(kv, "ROOT_") {
			env = append(env, kv)
		}
	}
	return env
}
