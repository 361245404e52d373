package s3test

import (
	"net/http"
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
