package s3store

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowstone-go/flowstone/internal/s3test"
	"github.com/flowstone-go/flowstone/internal/tlstest"
)

// TestTLSWithPrivateCA stores and reads an object over https from a server
// whose certificate a CA made by the test signed, trusting that CA
// through Config.RootCAs (read with CAFile); without it, or over http, New
// fails saying what to set.
func TestTLSWithPrivateCA(t *testing.T) {
	t.Parallel()
	certs := tlstest.New(t)
	srv := s3test.StartTLS(t, s3test.TLS{CertFile: certs.ServerCert, KeyFile: certs.ServerKey, RootCAs: certs.CAPool})
	pool, err := CAFile(certs.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cfg := Config{Endpoint: srv.Endpoint, Bucket: "results", AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, RootCAs: pool}
	s, err := New(ctx, cfg)
	if err != nil {
		t.Fatalf("New over https with the CA: %v", err)
	}
	data := bytes.Repeat([]byte("tls "), 1000)
	if _, err := s.Put(ctx, "k", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	rc, info, err := s.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, data) || info.Size != int64(len(data)) {
		t.Fatalf("read back %d bytes (%v), info %+v; want the %d bytes put", len(got), err, info, len(data))
	}

	for _, tc := range []struct {
		name string
		cfg  Config
		want []string
	}{
		{"no CA", Config{UseSSL: true}, []string{"not signed by a trusted CA", "Config.RootCAs", "S3_CA"}},
		{"plain http", Config{}, []string{srv.Endpoint, "Config.UseSSL"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cfg
			c.Endpoint, c.Bucket, c.AccessKey, c.SecretKey = srv.Endpoint, "results", srv.AccessKey, srv.SecretKey
			_, err := New(ctx, c)
			if err == nil {
				t.Fatal("New succeeded")
			}
			t.Logf("New: %v", err)
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
			if strings.Contains(err.Error(), srv.SecretKey) {
				t.Errorf("error reveals the secret key")
			}
		})
	}
}

func TestCAFileRefusesAFileWithoutCertificates(t *testing.T) {
	t.Parallel()
	certs := tlstest.New(t)
	if _, err := CAFile(certs.ServerKey); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("CAFile of a key: %v, want no PEM certificate", err)
	}
	if _, err := CAFile(filepath.Join(t.TempDir(), "missing.pem")); err == nil {
		t.Error("CAFile of a missing file succeeded")
	}
}
