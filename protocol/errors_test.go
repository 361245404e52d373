package protocol_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/flowstone-go/flowstone/protocol"
)

func TestErrorMatching(t *testing.T) {
	err := fmt.Errorf("running sum: %w", protocol.Errorf(protocol.CodeTimeout, "sum took longer than %s", "5m"))
	if got := err.Error(); got != "running sum: timeout: sum took longer than 5m" {
		t.Errorf("Error() = %q", got)
	}
	if !errors.Is(err, &protocol.Error{Code: protocol.CodeTimeout}) {
		t.Error("errors.Is does not match the code")
	}
	if errors.Is(err, &protocol.Error{Code: protocol.CodeCancelled}) {
		t.Error("errors.Is matches another code")
	}
	if errors.Is(err, &protocol.Error{Code: protocol.CodeTimeout, Message: "other"}) {
		t.Error("errors.Is matches a target with a message")
	}
	var pe *protocol.Error
	if !errors.As(err, &pe) || pe.Code != protocol.CodeTimeout {
		t.Errorf("errors.As = %v", pe)
	}
	if got := (&protocol.Error{Code: protocol.CodeInternal}).Error(); got != "internal" {
		t.Errorf("Error() without message = %q", got)
	}
}

func TestErrorValidate(t *testing.T) {
	for code, ok := range map[string]bool{
		protocol.CodeAssetNotFound: true, "a_new_code_2": true, "": false, "Timeout": false,
		"time out": false, "_x": false, "9x": false, string(make([]byte, 65)): false,
	} {
		err := (&protocol.Error{Code: code, Message: "m"}).Validate()
		if (err == nil) != ok {
			t.Errorf("code %q: Validate() = %v, want ok %v", code, err, ok)
		}
	}
}
