package jsonw_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/internal/jsonw"
)

func encodeNoHTML(t *testing.T, v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// The strings come out as encoding/json writes them, with and without HTML
// escaping. (The encoders built on this package check whole messages the
// same way, with fuzzing.)
func FuzzString(f *testing.F) {
	for _, s := range []string{"", "plain", `q"b\s`, "<a&b>", "\x00\x1f\t\n", "\u2028\u2029", "\xff\xfe", "é€😀"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := jsonw.String(nil, s), encodeNoHTML(t, s); !bytes.Equal(got, want) {
			t.Fatalf("String(%q) = %s, want %s", s, got, want)
		}
		want, _ := json.Marshal(s)
		if got := jsonw.HTMLString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("HTMLString(%q) = %s, want %s", s, got, want)
		}
	})
}

// Times come out as MarshalJSON writes them, and fail where it fails.
func TestTime(t *testing.T) {
	zones := []*time.Location{time.UTC, time.FixedZone("x", 5*3600+30*60), time.FixedZone("y", -7*3600), time.FixedZone("bad", 24*3600)}
	for _, tm := range []time.Time{time.Unix(0, 0), time.Unix(1764000000, 123456789), time.Date(9999, 12, 31, 23, 0, 0, 1, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)} {
		for _, z := range zones {
			tz := tm.In(z)
			want, err := tz.MarshalJSON()
			got, ok := jsonw.Time(nil, tz)
			if ok != (err == nil) || ok && !bytes.Equal(got, want) {
				t.Errorf("Time(%v) = %s, %v; MarshalJSON = %s, %v", tz, got, ok, want, err)
			}
		}
	}
}
