package coordinator

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/bridge"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// maxDeliveriesSubject is JetStream's advisory for a task delivered
// MaxDeliver times without an ack: every worker that took it died or missed
// its heartbeats.
const maxDeliveriesSubject = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + protocol.TaskStream + ".*"

// watchDeadLetters gives up tasks that exhausted their deliveries: it fails
// their materialization with a clear error, tells the dispatching
// coordinator through a completion, and removes the message from the work
// queue (where it would otherwise stay forever). One coordinator of the
// queue group handles each advisory.
func (c *Coordinator) watchDeadLetters() error {
	if err := c.subscribe(maxDeliveriesSubject, protocol.QueueGroup, c.onMaxDeliveries); err != nil {
		return fmt.Errorf("coordinator: subscribe dead letters: %w", err)
	}
	return nil
}

func (c *Coordinator) onMaxDeliveries(m *nats.Msg) {
	var adv struct {
		StreamSeq  uint64 `json:"stream_seq"`
		Deliveries uint64 `json:"deliveries"`
	}
	if err := json.Unmarshal(m.Data, &adv); err != nil || adv.StreamSeq == 0 {
		c.log.Warn().Str("subject", m.Subject).Msg("dead_letter_advisory_unreadable")
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	stream, err := c.js.Stream(ctx, protocol.TaskStream)
	if err != nil {
		return
	}
	raw, err := stream.GetMsg(ctx, adv.StreamSeq)
	if err != nil {
		return // already gone (acked late, or handled)
	}
	// Out of the queue first, so nothing sees the run end with its task
	// still queued.
	if err := stream.DeleteMsg(ctx, adv.StreamSeq); err != nil {
		c.log.Warn().Err(err).Uint64("seq", adv.StreamSeq).Msg("dead_letter_delete_failed")
	}
	tasks, perr := protocol.DecodeTasks(raw.Data, raw.Header.Get(protocol.BatchHeader) != "")
	if perr != nil {
		c.log.Warn().Uint64("seq", adv.StreamSeq).Str("error", perr.Message).Msg("dead_letter_unreadable")
		return
	}
	for _, task := range tasks {
		c.giveUp(ctx, task, int(adv.Deliveries))
	}
}

// giveUp records a task as failed for good and announces its completion.
func (c *Coordinator) giveUp(ctx context.Context, task protocol.Task, deliveries int) {
	fe := &flowstone.Error{Type: flowstone.TypeExecutionFailed,
		Message: fmt.Sprintf("asset %q (partition %q) was delivered %d times and never finished: each worker that took it died or missed its heartbeats; giving up. Check the workers' logs, then run it again",
			task.Asset, task.Partition, deliveries),
		Details: map[string]any{"asset": task.Asset, "partition": task.Partition, "deliveries": deliveries, "run_id": task.RunID}}
	key := bridge.MaterializationKey(task.Pipeline, task.Asset, task.Partition)
	cur, wrote, err := c.records.GiveUp(ctx, task.Pipeline, task.Asset, task.Partition, task.RunID, deliveries, fe)
	switch {
	case err != nil:
		c.log.Warn().Err(err).Str("key", key).Str("run_id", task.RunID).Msg("record_write_failed")
	case !wrote && cur != nil && cur.RunID == task.RunID:
		// It ended (in a batch whose other tasks did not): its completion
		// was published when it did.
		return
	}
	now := time.Now().UTC()
	comp := protocol.Completion{V: protocol.Version, TaskID: task.ID, RunID: task.RunID, Pipeline: task.Pipeline, Asset: task.Asset,
		Partition: task.Partition, Error: bridge.WireError(fe), Worker: c.cfg.ID, Attempt: max(deliveries, 1), StartedAt: now, FinishedAt: now}
	if body, perr := protocol.EncodeCompletion(comp); perr == nil {
		c.js.Publish(ctx, protocol.DoneSubject(task.Pipeline), body, jetstream.WithMsgID(task.ID+".dead"))
	}
	c.obs.deadLetters.WithLabelValues(task.Pipeline).Inc()
	c.log.Warn().Str("run_id", task.RunID).Str("pipeline", task.Pipeline).Str("asset", task.Asset).Int("deliveries", deliveries).Msg("task_given_up")
}
