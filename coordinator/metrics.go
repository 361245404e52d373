package coordinator

import (
	"context"
	"time"

	"github.com/flowstone-go/flowstone/protocol"
	"github.com/prometheus/client_golang/prometheus"
)

// RegisterMetrics adds the coordinator's metrics to reg: the task queue
// depth (read from JetStream at scrape time), tasks in flight, tasks
// published with the messages that carried them (batches hold several),
// API requests by verb and outcome with their latency, runs' durations by
// pipeline, asset and state, and tasks given up.
func (c *Coordinator) RegisterMetrics(reg prometheus.Registerer) {
	reg.MustRegister(c.obs.collectors()...)
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "flowstone_task_queue_depth",
			Help: "Task messages (single tasks or batches) waiting in the JetStream work queue, all pipelines and priorities."},
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
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "flowstone_task_messages_published_total",
			Help: "Task messages this coordinator published (a batch counts once)."},
			func() float64 {
				msgs, _ := c.tasks.Counts()
				return float64(msgs)
			}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "flowstone_tasks_published_total",
			Help: "Tasks this coordinator published, alone or in batches."},
			func() float64 {
				_, tasks := c.tasks.Counts()
				return float64(tasks)
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
