package protocol_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/flowstone-go/flowstone/protocol"
)

// TestDecodeRequestWire feeds raw bodies to DecodeRequest: what no Go value
// can produce, but the network can.
func TestDecodeRequestWire(t *testing.T) {
	valid := `{"v":1,"pipeline":"sales","asset":"sum"}`
	padded := valid + strings.Repeat(" ", protocol.MaxRequestBytes-len(valid))
	for _, tc := range []struct {
		name  string
		body  string
		code  string
		field string
	}{
		{name: "valid", body: valid},
		{name: "whitespace around", body: " \n" + valid + "\n"},
		{name: "exactly the limit", body: padded},
		{name: "keys in any case", body: `{"V":1,"Pipeline":"sales","ASSET":"sum"}`},
		{name: "empty", body: "", code: protocol.CodeBadRequest},
		{name: "one byte over the limit", body: padded + " ", code: protocol.CodePayloadTooLarge},
		{name: "not UTF-8", body: `{"v":1,"pipeline":"sales","asset":"sum","partition":"` + "\xff" + `"}`, code: protocol.CodeBadRequest},
		{name: "truncated", body: `{"v":1,"pipeline":"sa`, code: protocol.CodeBadRequest},
		{name: "not JSON", body: `v=1&pipeline=sales`, code: protocol.CodeBadRequest},
		{name: "an array", body: `[1]`, code: protocol.CodeBadRequest},
		{name: "a string", body: `"run"`, code: protocol.CodeBadRequest},
		{name: "null", body: `null`, code: protocol.CodeUnsupportedVersion, field: "v"},
		{name: "no version", body: `{"pipeline":"sales","asset":"sum"}`, code: protocol.CodeUnsupportedVersion, field: "v"},
		{name: "null version", body: `{"v":null,"pipeline":"sales","asset":"sum"}`, code: protocol.CodeUnsupportedVersion, field: "v"},
		{name: "version as a string", body: `{"v":"1","pipeline":"sales","asset":"sum"}`, code: protocol.CodeBadRequest, field: "v"},
		{name: "fractional version", body: `{"v":1.5,"pipeline":"sales","asset":"sum"}`, code: protocol.CodeBadRequest, field: "v"},
		{name: "newer version with new fields", body: `{"v":2,"pipeline":"sales","asset":"sum","lineage":true}`, code: protocol.CodeUnsupportedVersion, field: "v"},
		{name: "unknown field", body: `{"v":1,"pipeline":"sales","asset":"sum","parition":"x"}`, code: protocol.CodeBadRequest, field: "parition"},
		{name: "priority as a string", body: `{"v":1,"pipeline":"sales","asset":"sum","priority":"1"}`, code: protocol.CodeBadRequest, field: "priority"},
		{name: "force as a number", body: `{"v":1,"pipeline":"sales","asset":"sum","force":1}`, code: protocol.CodeBadRequest, field: "force"},
		{name: "timeout too big for int64", body: `{"v":1,"pipeline":"sales","asset":"sum","timeout_ms":1e30}`, code: protocol.CodeBadRequest, field: "timeout_ms"},
		{name: "bad time", body: `{"v":1,"pipeline":"sales","asset":"sum","async":true,"scheduled_at":"tomorrow"}`, code: protocol.CodeBadRequest},
		{name: "second object", body: valid + valid, code: protocol.CodeBadRequest},
		{name: "trailing garbage", body: valid + " x", code: protocol.CodeBadRequest},
		{name: "zone offset of a day", body: `{"v":1,"pipeline":"sales","asset":"sum","async":true,"scheduled_at":"2025-01-01T00:00:00+24:00"}`, code: protocol.CodeBadRequest, field: "scheduled_at"},
		{name: "zone offset just under a day", body: `{"v":1,"pipeline":"sales","asset":"sum","async":true,"scheduled_at":"2025-01-01T00:00:00-23:59"}`},
		{name: "year zero", body: `{"v":1,"pipeline":"sales","asset":"sum","async":true,"scheduled_at":"0000-06-01T00:00:00Z"}`, code: protocol.CodeBadRequest, field: "scheduled_at"},
		{name: "invalid field value", body: `{"v":1,"pipeline":"sales.>","asset":"sum"}`, code: protocol.CodeBadRequest, field: "pipeline"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := protocol.DecodeRequest[protocol.RunRequest]([]byte(tc.body))
			if tc.code == "" {
				wantOK(t, err)
				if got.Pipeline != "sales" || got.Asset != "sum" {
					t.Fatalf("decoded %+v", got)
				}
				return
			}
			wantCode(t, err, tc.code, tc.field)
			if got != (protocol.RunRequest{}) {
				t.Fatalf("a refused request decodes to %+v, want the zero value", got)
			}
		})
	}
}

func TestVersionErrorNamesBothVersions(t *testing.T) {
	_, err := protocol.DecodeRequest[protocol.StatusRequest]([]byte(`{"v":7,"pipeline":"sales","asset":"sum"}`))
	wantCode(t, err, protocol.CodeUnsupportedVersion, "v")
	if !strings.Contains(err.Message, "7") || !strings.Contains(err.Message, "1") {
		t.Errorf("message %q does not name both versions", err.Message)
	}
	if err.Details["got"] != 7 || err.Details["want"] != protocol.Version {
		t.Errorf("details = %v", err.Details)
	}
}

func TestPayloadTooLargeDetails(t *testing.T) {
	body := bytes.Repeat([]byte(" "), protocol.MaxRequestBytes+10)
	_, err := protocol.DecodeRequest[protocol.RunRequest](body)
	wantCode(t, err, protocol.CodePayloadTooLarge, "")
	if err.Details["size"] != protocol.MaxRequestBytes+10 || err.Details["limit"] != protocol.MaxRequestBytes {
		t.Errorf("details = %v", err.Details)
	}
}

func TestUnknownNestedField(t *testing.T) {
	task := validTask()
	data, err := protocol.EncodeTask(task)
	wantOK(t, err)
	bad := bytes.Replace(data, []byte(`"object_key"`), []byte(`"objectkey":"x","object_key"`), 1)
	_, err = protocol.DecodeTask(bad)
	wantCode(t, err, protocol.CodeBadRequest, "objectkey")
}

func TestEncodeDoesNotEscapeHTML(t *testing.T) {
	r := validRunRequest()
	r.Partition = "<a&b>"
	data, err := protocol.EncodeRequest(r)
	wantOK(t, err)
	if !bytes.Contains(data, []byte(`"<a&b>"`)) {
		t.Errorf("encoded %s", data)
	}
}

func TestEncodeTooLarge(t *testing.T) {
	m := validManifest()
	m.Assets[0].Description = strings.Repeat("d", protocol.MaxMessageBytes)
	_, err := protocol.EncodeManifest(m)
	wantCode(t, err, protocol.CodePayloadTooLarge, "")
}
