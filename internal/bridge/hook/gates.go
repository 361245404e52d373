package hook

// ApproveRequest is what the options of Approve and Reject describe.
type ApproveRequest struct {
	// Partition is the partition named (flowstone.DefaultPartition when
	// none is).
	Partition string
	// Reason is the Reason given ("" for none).
	Reason string
}
