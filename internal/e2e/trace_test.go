package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver is an in-process OTLP/HTTP trace collector: it keeps the
// spans it is sent, by trace.
type otlpReceiver struct {
	mu    sync.Mutex
	spans map[string][]string // trace id → "service: span name"
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	var req coltrace.ExportTraceServiceRequest
	if err != nil || r.URL.Path != "/v1/traces" || proto.Unmarshal(body, &req) != nil {
		http.Error(w, "not an OTLP trace export", http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	for _, rs := range req.ResourceSpans {
		service := ""
		for _, a := range rs.GetResource().GetAttributes() {
			if a.Key == "service.name" {
				service = a.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.ScopeSpans {
			for _, sp := range ss.Spans {
				id := fmt.Sprintf("%x", sp.TraceId)
				o.spans[id] = append(o.spans[id], service+": "+sp.Name)
			}
		}
	}
	o.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
	w.Write(out)
}

// traceWith returns the spans of the first trace that has a span named
// name, sorted.
func (o *otlpReceiver) traceWith(name string) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, spans := range o.spans {
		for _, s := range spans {
			if strings.HasSuffix(s, ": "+name) {
				out := append([]string(nil), spans...)
				sort.Strings(out)
				return out
			}
		}
	}
	return nil
}

// TestOneRunIsOneTrace: fsctl, the coordinator and the worker, real
// processes exporting to an in-process OTLP receiver, put the spans of one
// run in one trace: the client's request, the coordinator's API call and
// run, and each asset's execution on the worker.
func TestOneRunIsOneTrace(t *testing.T) {
	recv := &otlpReceiver{spans: map[string][]string{}}
	srv := httptest.NewServer(recv)
	defer srv.Close()
	f := newFleet(t)
	f.coordinator("c1", "--otlp-endpoint", srv.URL)
	f.worker("w1", "--otlp-endpoint", srv.URL)
	f.waitReady(1)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	var run runOut
	f.ok(&run, "run", "example", "sum")
	want := []string{
		"flowstone-coordinator: flowstone.api run",
		"flowstone-coordinator: flowstone.run sum",
		"flowstone-worker: flowstone.execute doubled",
		"flowstone-worker: flowstone.execute numbers",
		"flowstone-worker: flowstone.execute sum",
		"fsctl: flowstone.client run",
	}
	f.eventually("the run's spans from fsctl, the coordinator and the worker in one trace", func() (bool, string) {
		got := recv.traceWith("flowstone.run sum")
		for _, w := range want {
			found := false
			for _, g := range got {
				found = found || g == w
			}
			if !found {
				return false, fmt.Sprintf("%q", got)
			}
		}
		return true, ""
	})
}
