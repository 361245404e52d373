package s3test

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

func TestStartServesS3(t *testing.T) {
	t.Parallel()
	srv := Start(t)
	resp, err := http.Get("http://" + srv.Endpoint + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// Unsigned requests are refused: the server enforces its keys.
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("anonymous GET / = %s, want 403", resp.Status)
	}
}

func TestServersAreIndependent(t *testing.T) {
	t.Parallel()
	a, b := Start(t), Start(t)
	if a.Endpoint == b.Endpoint || a.SecretKey == b.SecretKey || a.Dir == b.Dir {
		t.Errorf("two servers share an endpoint, key or dir: %+v %+v", a, b)
	}
}

func TestRestartKeepsEndpointAndData(t *testing.T) {
	t.Parallel()
	srv := Start(t)
	if err := os.Mkdir(filepath.Join(srv.Dir, "kept"), 0o755); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	if resp, err := http.Get("http://" + srv.Endpoint + "/"); err == nil {
		resp.Body.Close()
		t.Fatal("a stopped server answered")
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + srv.Endpoint + "/")
	if err != nil {
		t.Fatalf("restarted server: %v", err)
	}
	resp.Body.Close()
	if _, err := os.Stat(filepath.Join(srv.Dir, "kept")); err != nil {
		t.Errorf("data dir lost across the restart: %v", err)
	}
}
