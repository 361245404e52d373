package s3test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

const (
	// BinaryEnv names the environment variable that points at a versitygw
	// binary to use instead of looking on PATH or building one.
	BinaryEnv = "FLOWSTONE_VERSITYGW"
	// VersitygwModule is the package Binary builds when it finds no binary.
	VersitygwModule = "github.com/versity/versitygw/cmd/versitygw"
	// VersitygwVersion is the version Binary builds.
	VersitygwVersion = "v1.8.0"
)

var binary struct {
	once    sync.Once
	path    string
	built   time.Duration // zero unless this process built it
	err     error
	logOnce sync.Once
}

// Binary returns the path of a versitygw binary: $FLOWSTONE_VERSITYGW, else
// versitygw on PATH, else VersitygwVersion built with `go install` into
// <user cache dir>/flowstone/bin. The build runs at most once per machine:
// a file lock keeps parallel test processes from building it twice, and the
// binary appears there only complete, by rename. It fails the test if no
// binary can be had.
func Binary(t testing.TB) string {
	t.Helper()
	binary.once.Do(func() {
		binary.path, binary.built, binary.err = findOrBuild()
	})
	if binary.err != nil {
		t.Fatalf("s3test: no versitygw binary: %v\n(set %s to a versitygw binary, put one on PATH, or allow `go install %s@%s`)",
			binary.err, BinaryEnv, VersitygwModule, VersitygwVersion)
	}
	if binary.built > 0 {
		binary.logOnce.Do(func() {
			t.Logf("s3test: built %s in %v", binary.path, binary.built.Round(time.Millisecond))
		})
	}
	return binary.path
}

func findOrBuild() (string, time.Duration, error) {
	if p := os.Getenv(BinaryEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", 0, fmt.Errorf("%s=%s: %w", BinaryEnv, p, err)
		}
		return p, 0, nil
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, 0, nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", 0, err
	}
	dir := filepath.Join(cache, "flowstone", "bin")
	bin := filepath.Join(dir, "versitygw-"+VersitygwVersion)
	if _, err := os.Stat(bin); err == nil {
		return bin, 0, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", 0, err
	}
	unlock, err := lockFile(filepath.Join(dir, "versitygw.lock"))
	if err != nil {
		return "", 0, err
	}
	defer unlock()
	// Another process may have built it while we waited for the lock.
	if _, err := os.Stat(bin); err == nil {
		return bin, 0, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", 0, err
	}
	start := time.Now()
	if err := build(dir, bin); err != nil {
		return "", 0, err
	}
	return bin, time.Since(start), nil
}

// build installs versitygw into a private dir next to bin and renames it
// into place, so a crash never leaves a half-written binary behind.
func build(dir, bin string) error {
	gobin, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(gobin)
	cmd := exec.Command("go", "install", VersitygwModule+"@"+VersitygwVersion)
	// Outside any module, so this repository's go.mod plays no part.
	cmd.Dir = gobin
	cmd.Env = append(os.Environ(), "GOBIN="+gobin, "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go install %s@%s: %w\n%s", VersitygwModule, VersitygwVersion, err, out)
	}
	return os.Rename(filepath.Join(gobin, "versitygw"), bin)
}
