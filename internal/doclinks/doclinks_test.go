package doclinks

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var (
	// link is a Markdown link's target: [text](target).
	link = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	// docName is a backticked Markdown file name: `docs/ARCHITECTURE.md`.
	docName = regexp.MustCompile("`([^`\\s]+\\.md)`")
)

// TestDocumentsPointInsideTheRepository reads every Markdown file of the
// repository (outside fenced code blocks) and checks that each relative
// link, and each backticked .md name, is a file or directory of the
// repository: relative to the document, or for a backticked name also to
// the repository's root.
func TestDocumentsPointInsideTheRepository(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root %s: %v", root, err)
	}
	docs := 0
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != root || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".md") {
			return nil
		}
		docs++
		checkDocument(t, root, path)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if docs < 3 {
		t.Fatalf("found %d Markdown documents under %s: the walk is broken", docs, root)
	}
}

func checkDocument(t *testing.T, root, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rel, _ := filepath.Rel(root, path)
	dir := filepath.Dir(path)
	fenced := false
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		if fenced {
			continue
		}
		for _, m := range link.FindAllStringSubmatch(line, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") || strings.HasPrefix(target, "#") {
				continue
			}
			target, _, _ = strings.Cut(target, "#")
			if msg := resolve(root, filepath.Join(dir, target)); msg != "" {
				t.Errorf("%s:%d: link %s %s", rel, n, m[1], msg)
			}
		}
		for _, m := range docName.FindAllStringSubmatch(line, -1) {
			inDir, atRoot := resolve(root, filepath.Join(dir, m[1])), resolve(root, filepath.Join(root, m[1]))
			if inDir != "" && atRoot != "" {
				t.Errorf("%s:%d: %s %s", rel, n, m[1], inDir)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}

// resolve says what is wrong with path: "" if it is in the repository and
// exists.
func resolve(root, path string) string {
	rel, err := filepath.Rel(root, path)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "leads out of the repository (" + path + ")"
	}
	if _, err := os.Stat(path); err != nil {
		return "leads to nothing: " + err.Error()
	}
	return ""
}
