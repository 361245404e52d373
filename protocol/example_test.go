package protocol_test

import (
	"fmt"

	"github.com/flowstone-go/flowstone/protocol"
)

// A client sends a run request; the coordinator decodes it, refuses or
// answers, and the client decodes the reply.
func Example() {
	// Client.
	body, err := protocol.EncodeRequest(protocol.RunRequest{
		V: protocol.Version, Pipeline: "sales", Asset: "sum", Partition: "2025-01-15",
	})
	if err != nil {
		panic(err)
	}
	subject := protocol.APISubject(protocol.VerbRun)

	// Coordinator, on subject.
	req, bad := protocol.DecodeRequest[protocol.RunRequest](body)
	var reply []byte
	if bad != nil {
		reply = protocol.EncodeError(bad)
	} else {
		reply = protocol.EncodeReply(protocol.RunReply{RunID: "r1", Asset: req.Asset, Partition: req.Partition}, nil)
	}

	// Client.
	res, failed := protocol.DecodeReply[protocol.RunReply](reply)
	fmt.Println(subject, res.RunID, failed == nil)
	// Output: flowstone.api.run r1 true
}

// A request a coordinator must refuse gets a structured error naming the
// field.
func ExampleDecodeRequest() {
	_, err := protocol.DecodeRequest[protocol.RunRequest]([]byte(`{"v":1,"pipeline":"sales","asset":"sum","priority":7}`))
	fmt.Println(err.Code, err.Details["field"])
	fmt.Println(string(protocol.EncodeError(err)))
	// Output:
	// bad_request priority
	// {"v":1,"error":{"code":"bad_request","message":"priority 7 is outside 0..3 (3 is the highest)","details":{"field":"priority"}}}
}

// Tasks go to one subject per pipeline and priority; workers keep one
// durable consumer per priority and drain the highest first.
func ExampleTaskSubject() {
	fmt.Println(protocol.TaskSubject("sales", 0))
	for p := range protocol.MaxPriority + 1 {
		fmt.Println(protocol.TaskFilter(p))
	}
	// Output:
	// flowstone.task.sales.p0
	// flowstone.task.*.p0
	// flowstone.task.*.p1
	// flowstone.task.*.p2
	// flowstone.task.*.p3
}
