package fleet

import "testing"

func TestCovers(t *testing.T) {
	for _, tc := range []struct {
		pattern, subject string
		want             bool
	}{
		{"flowstone.task.>", "flowstone.task.>", true},
		{"flowstone.>", "flowstone.task.>", true},
		{">", "flowstone.task.>", true},
		{"flowstone.task.*", "flowstone.task.>", false},
		{"flowstone.task.>", "flowstone.>", false},
		{"flowstone.task.a.>", "flowstone.task.>", false},
		{"flowstone.*.*", "flowstone.cancel.*", true},
		{"flowstone.cancel.x", "flowstone.cancel.*", false},
		{"flowstone.task", "flowstone.task.>", false},
		{"flowstone.task.>", "flowstone.task", false},
	} {
		if got := covers(tc.pattern, tc.subject); got != tc.want {
			t.Errorf("covers(%q, %q) = %v, want %v", tc.pattern, tc.subject, got, tc.want)
		}
	}
}
