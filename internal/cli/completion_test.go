package cli_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// complete runs the hidden completion verb and returns its candidates.
func complete(t *testing.T, words ...string) []string {
	t.Helper()
	r := fsctl(t, append([]string{"__complete"}, words...)...)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("__complete %q: exit %d, stderr %q", words, r.code, r.stderr)
	}
	return strings.Fields(r.stdout)
}

func TestCompletionCandidates(t *testing.T) {
	srv := server(t)
	for _, c := range []struct {
		words []string
		want  string
	}{
		{[]string{"ba"}, "backfill"},
		{[]string{"comp"}, "completion"},
		{[]string{"completion", ""}, "bash fish zsh"},
		{[]string{"graph", "--format", ""}, "ascii dot mermaid"},
		{[]string{"backfill", "--on-error", "h"}, "halt"},
		{[]string{"run", "--as"}, "--async"},
		// The fleet's names, from the fleet at --server.
		{append(append([]string{}, srv...), "status", "dai"), "daily_sales"},
		{append(append([]string{}, srv...), "status", "daily_sales", "--partition", "2025-01-01", "c"), "cleaned"},
		{append(append([]string{}, srv...), "info", "example", ""), "doubled numbers sum"},
		// Past the last argument, or an unknown verb: nothing.
		{append(append([]string{}, srv...), "status", "daily_sales", "orders", ""), ""},
		{[]string{"nosuchverb", ""}, ""},
	} {
		if got := strings.Join(complete(t, c.words...), " "); got != c.want {
			t.Errorf("__complete %q = %q, want %q", c.words, got, c.want)
		}
	}
	// No fleet at --server: no names, and no error either (a shell waits).
	if got := complete(t, "--server", "nats://127.0.0.1:1", "status", ""); len(got) != 0 {
		t.Errorf("names without a fleet: %q", got)
	}
	if r := fsctl(t, "completion", "powershell"); r.code != 2 || !strings.Contains(r.stderr, "bash, zsh, fish") {
		t.Errorf("completion powershell: exit %d, %q", r.code, r.stderr)
	}
}

// The bash script completes through a real fsctl binary in a real bash.
func TestBashCompletionScript(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash here")
	}
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "fsctl"), "github.com/flowstone-go/flowstone/cmd/fsctl")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build fsctl: %v\n%s", err, out)
	}
	srv := server(t)
	script := `source <(fsctl completion bash)
COMP_WORDS=(fsctl --server "$SRV" status "" ); COMP_CWORD=4; _fsctl; echo "${COMPREPLY[*]}"
COMP_WORDS=(fsctl ba); COMP_CWORD=1; _fsctl; echo "${COMPREPLY[*]}"`
	cmd := exec.Command(bash, "-c", script)
	cmd.Env = append(os.Environ(), "PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH"), "SRV="+srv[1])
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bash: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "daily_sales") || !strings.Contains(lines[0], "example") || lines[1] != "backfill" {
		t.Fatalf("bash completion printed %q", out)
	}
}
