package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/client"
	"github.com/flowstone-go/flowstone/internal/devfleet"
)

// Run the proposal's example on a fleet: a local one here, started the way
// `fsctl dev` starts it; in production, Connect to your NATS URL.
func Example() {
	ctx := context.Background()
	fleet, err := devfleet.Start(ctx, devfleet.Config{Port: -1, Workers: 2})
	if err != nil {
		log.Fatal(err)
	}
	defer fleet.Stop(ctx)

	c, err := client.Connect(fleet.URL())
	if err != nil {
		log.Fatal(err) // TypeUnavailable, saying how to start a fleet
	}
	defer c.Close()

	res, err := c.Run(ctx, "example", "sum")
	if err != nil {
		log.Fatal(err)
	}
	var sum int
	if err := res.Decode(&sum); err != nil {
		log.Fatal(err)
	}
	fmt.Println("sum:", sum)

	// Errors keep their type across the wire.
	_, err = c.Run(ctx, "example", "summ")
	fmt.Println(errors.Is(err, flowstone.ErrAssetNotFound))

	// Output:
	// sum: 30
	// true
}
