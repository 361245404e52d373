package batcher

import "time"

// SetAckTimeout shortens p's wait for an acknowledgement, so tests of lost
// acks need not wait AckTimeout.
func SetAckTimeout(p *Publisher, d time.Duration) { p.ackTimeout = d }
