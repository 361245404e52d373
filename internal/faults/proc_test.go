//go:build faults

package faults

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// exitWait bounds how long a signalled process may take to exit.
const exitWait = 30 * time.Second

// proc is one process the harness started: a daemon, a nats-server, the S3
// server, a background fsctl. Its stderr (and stdout, unless kept apart)
// goes to its own log file, read once the run is over; it is killed when
// the test ends.
type proc struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	stdout  *bytes.Buffer // when kept apart; read only once exited is closed
	exited  chan struct{} // closed once the process has exited
	err     error         // how it exited, once exited is closed
}

// startProc starts cmd, its output appended to dir/name.log. With
// keepStdout, stdout is kept in memory instead (fsctl's JSON). It may be
// called from an injector's goroutine: it returns errors rather than
// failing the test.
func startProc(t *testing.T, dir, name string, keepStdout bool, cmd *exec.Cmd) (*proc, error) {
	p := &proc{name: name, logPath: filepath.Join(dir, name+".log"), cmd: cmd, exited: make(chan struct{})}
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("log of %s: %w", name, err)
	}
	fmt.Fprintf(f, "# %q\n", cmd.Args)
	p.cmd.Stderr, p.cmd.Stdout = f, f
	if keepStdout {
		p.stdout = &bytes.Buffer{}
		p.cmd.Stdout = p.stdout
	}
	if err := p.cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		f.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGCONT) // a stopped process cannot die
		p.cmd.Process.Kill()
		<-p.exited
	})
	return p, nil
}

// signal sends sig; a process that has exited already is not an error.
func (p *proc) signal(sig syscall.Signal) error {
	if !p.running() {
		return nil
	}
	if err := p.cmd.Process.Signal(sig); err != nil && p.running() {
		return fmt.Errorf("signal %v to %s: %w", sig, p.name, err)
	}
	return nil
}

// kill SIGKILLs the process and waits until it is gone.
func (p *proc) kill() error {
	if err := p.signal(syscall.SIGKILL); err != nil {
		return err
	}
	return p.waitExit(exitWait)
}

// waitExit waits up to d for the process to exit.
func (p *proc) waitExit(d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.exited:
		return nil
	case <-t.C:
		return fmt.Errorf("%s did not exit within %v", p.name, d)
	}
}

// running reports whether the process has not exited yet.
func (p *proc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// logLine is one JSON log line of a daemon, with the file it came from.
type logLine struct {
	proc   string
	raw    string
	fields map[string]any
}

func (l logLine) str(key string) string {
	s, _ := l.fields[key].(string)
	return s
}

// logLines reads the JSON lines of the process's log; other lines (the
// command line, a panic) are skipped.
func (p *proc) logLines() ([]logLine, error) {
	f, err := os.Open(p.logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []logLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, logLine{proc: p.name, raw: sc.Text(), fields: m})
		}
	}
	return out, sc.Err()
}
