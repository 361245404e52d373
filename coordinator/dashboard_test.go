package coordinator_test

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/flowstone-go/flowstone/pipelines"
	"github.com/flowstone-go/flowstone/worker"
	"github.com/prometheus/client_golang/prometheus"
)

// describer records the metrics a Registerer is given, by name, with
// their label names.
type describer map[string][]string

func (d describer) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 16)
	go func() { c.Describe(ch); close(ch) }()
	name := regexp.MustCompile(`fqName: "([^"]+)"`)
	labels := regexp.MustCompile(`variableLabels: \{([^}]*)\}`)
	for desc := range ch {
		s := desc.String()
		m := name.FindStringSubmatch(s)
		if m == nil {
			continue
		}
		var ls []string
		if l := labels.FindStringSubmatch(s); l != nil && l[1] != "" {
			ls = strings.Split(l[1], ",")
		}
		d[m[1]] = ls
	}
	return nil
}
func (d describer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		d.Register(c)
	}
}
func (d describer) Unregister(prometheus.Collector) bool { return false }

// The Grafana dashboard shipped in docs/grafana queries only metrics the
// coordinator and the workers export, by labels they have.
func TestGrafanaDashboardQueriesExportedMetrics(t *testing.T) {
	d := describer{}
	e := newEnv(t)
	e.startCoordinator("c1").RegisterMetrics(d)
	e.startWorkerWith(worker.Config{Registerer: d}, pipelines.Example())

	b, err := os.ReadFile("../docs/grafana/flowstone.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	metric := regexp.MustCompile(`flowstone_[a-z_]+`)
	by := regexp.MustCompile(`by \(([^)]*)\)`)
	selector := regexp.MustCompile(`\{([a-z_]+)=`)
	n := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			n++
			var labels []string
			for _, name := range metric.FindAllString(tg.Expr, -1) {
				ls, ok := d[name]
				if !ok {
					base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_count"), "_sum")
					ls, ok = d[base]
					if ok && base != name {
						ls = append(ls, "le")
					}
				}
				if !ok {
					t.Errorf("panel %q queries %s, which nothing exports", p.Title, name)
				}
				labels = append(labels, ls...)
			}
			var used []string
			for _, m := range by.FindAllStringSubmatch(tg.Expr, -1) {
				for _, l := range strings.Split(m[1], ",") {
					used = append(used, strings.TrimSpace(l))
				}
			}
			for _, m := range selector.FindAllStringSubmatch(tg.Expr, -1) {
				used = append(used, m[1])
			}
			for _, l := range used {
				if !slices.Contains(labels, l) {
					t.Errorf("panel %q groups or selects by %q, a label its metrics lack (%v)", p.Title, l, labels)
				}
			}
		}
	}
	if n < 10 {
		t.Fatalf("the dashboard has %d queries", n)
	}
}
