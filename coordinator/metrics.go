package coordinator

import (
	"context"
	"time"

	"github.com/flowstone-go/flowstone/protocol"
	"github.com/prometheus/client_golang/prometheus"
)

// RegisterMetrics adds the coordinator's metrics to reg: the task queue
// depth (read from JetStream at scrape time), runs in flight and tasks
// dispatched.
func (c *Coordinator) RegisterMetrics(reg prometheus.Registerer) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "flowstone_task_queue_depth",
			Help: "Tasks waiting in the JetStream work queue, all pipelines and priorities."},
			func() float64 {
				ctx, cancel := context.WithTimeout(c.ctx, 2*time.Second)
				defer cancel()
				s, err := c.js.Stream(ctx, protocol.TaskStream)
				if err != nil {
					return -1
				}
				info, err := s.Info(ctx)
				if err != nil {
					return -1
				}
				return float64(info.State.Msgs)
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "flowstone_tasks_in_flight",
			Help: "Tasks this coordinator dispatched and awaits."},
			func() float64 {
				c.disp.mu.Lock()
				defer c.disp.mu.Unlock()
				return float64(len(c.disp.waiters))
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "flowstone_pipelines",
			Help: "Pipelines hosted by live workers."},
			func() float64 {
				c.reg.mu.RLock()
				defer c.reg.mu.RUnlock()
				return float64(len(c.reg.namesLocked()))
			}),
	)
}
