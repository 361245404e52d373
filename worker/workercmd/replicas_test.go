package workercmd

import (
	"io"
	"strings"
	"testing"
)

func TestParseReplicas(t *testing.T) {
	t.Setenv("FLOWSTONE_REPLICAS", "3")
	o, err := parse(nil, io.Discard)
	if err != nil || o.daemon.Replicas != 3 {
		t.Fatalf("FLOWSTONE_REPLICAS=3: %+v, %v", o, err)
	}
	t.Setenv("FLOWSTONE_REPLICAS", "three")
	if _, err := parse(nil, io.Discard); err == nil || !strings.Contains(err.Error(), "FLOWSTONE_REPLICAS") {
		t.Fatalf("FLOWSTONE_REPLICAS=three: %v, want an error naming it", err)
	}
	if _, err := parse([]string{"--replicas", "9"}, io.Discard); err == nil || !strings.Contains(err.Error(), "1 to 5") {
		t.Fatalf("--replicas 9: %v, want an error giving the range", err)
	}
}
