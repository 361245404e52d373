package hook

// ApproveRequest is what the options of Approve and Reject describe.
type ApproveRequest struct {
	Partition string
	Reason    string
}
