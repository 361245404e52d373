package security_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestComposeUsesTheRoles checks compose.yaml against deploy/nats.conf:
// the nats service runs the file, every password it reads from the
// environment is given (from the environment, with a default marked for
// local use only), and the daemons connect as their roles.
func TestComposeUsesTheRoles(t *testing.T) {
	conf, err := os.ReadFile(confPath)
	if err != nil {
		t.Fatal(err)
	}
	compose, err := os.ReadFile("../../compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c := string(compose)
	if !strings.Contains(c, "./deploy/nats.conf:/etc/nats/nats.conf:ro") || !strings.Contains(c, `"-c", "/etc/nats/nats.conf"`) {
		t.Error("compose.yaml does not run NATS with deploy/nats.conf")
	}
	vars := regexp.MustCompile(`password: \$([A-Z_]+)`).FindAllStringSubmatch(string(conf), -1)
	if len(vars) != 4 {
		t.Fatalf("deploy/nats.conf reads %d passwords from the environment, want one per role: %v", len(vars), vars)
	}
	for _, v := range vars {
		if !regexp.MustCompile(v[1] + `: \$\{` + v[1] + `:-[a-z]+-dev-only\}`).MatchString(c) {
			t.Errorf("compose.yaml does not pass %s from the environment with a dev-only default", v[1])
		}
	}
	for _, role := range []string{roleCoordinator, roleWorker} {
		pw := "NATS_PASSWORD: ${NATS_" + strings.ToUpper(role) + "_PASSWORD:-" + role + "-dev-only}"
		if !strings.Contains(c, "NATS_USER: "+role) || !strings.Contains(c, pw) {
			t.Errorf("compose.yaml does not connect a %s as its role (NATS_USER: %s, %s)", role, role, pw)
		}
	}
	if strings.Contains(c, "flowstone-secret") {
		t.Error("compose.yaml hard-codes a secret")
	}
}
