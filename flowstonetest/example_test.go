package flowstonetest_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/flowstonetest"
)

// articles downloads a text and counts its words.
var articles = flowstone.MustPipeline("articles",
	flowstone.Asset("download", func(*flowstone.Context) (any, error) {
		panic("tests must not reach the network")
	}),
	flowstone.Asset("word_count", func(c *flowstone.Context) (any, error) {
		text, err := flowstone.Dep[string](c, "download")
		if err != nil {
			return nil, err
		}
		return len(strings.Fields(text)), nil
	}, flowstone.DependsOn("download")),
)

// testWordCount is what a test of word_count looks like (in your code:
// func TestWordCount(t *testing.T)): the value of "download" is made up by
// the test, and the real download never runs.
func testWordCount(t testing.TB) {
	res, err := flowstonetest.RunAsset(t, articles, "word_count",
		map[string]any{"download": "the quick brown fox"})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := res.Decode(&n); err != nil {
		t.Fatal(err)
	}
	fmt.Println("words:", n)
	if n != 4 {
		t.Fatalf("word_count = %d, want 4", n)
	}
}

func ExampleRunAsset() {
	testWordCount(exampleT{})
	// Output: words: 4
}

// exampleT stands in for the *testing.T a real test receives, so the
// example can run outside one.
type exampleT struct{ testing.TB }

func (exampleT) Helper()                           {}
func (exampleT) Parallel()                         {}
func (exampleT) Context() context.Context          { return context.Background() }
func (exampleT) Fatal(args ...any)                 { panic(fmt.Sprint(args...)) }
func (exampleT) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
