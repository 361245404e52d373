package integrity

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestSourceEnforcesDeclaredSize(t *testing.T) {
	tests := []struct {
		data    string
		size    int64
		wantErr bool
	}{
		{"", 0, false},
		{"", -1, false},
		{"abc", 3, false},
		{"abc", -1, false},
		{"abc", 2, true},
		{"abc", 4, true},
		{"abc", 0, true},
	}
	for _, tt := range tests {
		for name, r := range map[string]io.Reader{
			"whole":   strings.NewReader(tt.data),
			"onebyte": iotest.OneByteReader(strings.NewReader(tt.data)),
			"dataeof": iotest.DataErrReader(strings.NewReader(tt.data)),
		} {
			src := NewSource(context.Background(), r, tt.size)
			got, err := io.ReadAll(src)
			if (err != nil) != tt.wantErr {
				t.Errorf("%s %q declared %d: error = %v, want error %v", name, tt.data, tt.size, err, tt.wantErr)
			}
			if err == nil {
				sum := sha256.Sum256([]byte(tt.data))
				if string(got) != tt.data || src.Len() != int64(len(tt.data)) || src.Sum() != hex.EncodeToString(sum[:]) || src.Digest() != sum {
					t.Errorf("%s %q: read %q, len %d, sum %s", name, tt.data, got, src.Len(), src.Sum())
				}
			}
		}
	}
}

func TestSourceStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	cause := errors.New("shutting down")
	cancel(cause)
	_, err := io.ReadAll(NewSource(ctx, strings.NewReader("abc"), -1))
	if !errors.Is(err, context.Canceled) || !errors.Is(err, cause) {
		t.Errorf("error = %v, want context.Canceled and the cause", err)
	}
}

func TestReaderVerifies(t *testing.T) {
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	tests := []struct {
		name, data string
		size       int64
		want       string
		ok         bool
	}{
		{"intact", "abc", 3, sum("abc"), true},
		{"empty", "", 0, sum(""), true},
		{"flipped", "abd", 3, sum("abc"), false},
		{"short", "ab", 3, sum("abc"), false},
		{"long", "abcd", 3, sum("abc"), false},
	}
	for _, tt := range tests {
		r := NewReader(io.NopCloser(iotest.OneByteReader(strings.NewReader(tt.data))), "k", tt.size, tt.want)
		_, err := io.ReadAll(r)
		if tt.ok && err != nil || !tt.ok && !errors.Is(err, ErrChecksum) {
			t.Errorf("%s: error = %v, want ok %v", tt.name, err, tt.ok)
		}
		// The verdict sticks.
		if _, again := r.Read(make([]byte, 1)); !tt.ok && !errors.Is(again, ErrChecksum) {
			t.Errorf("%s: Read after the failure = %v", tt.name, again)
		}
	}
}
