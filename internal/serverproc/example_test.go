//go:build unix

package serverproc_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/dagflow/dagflow/internal/serverproc"
)

// Measure a failover: kill the active instance of two and time until the other leads.
func ExampleWaitActive() {
	ctx := context.Background()
	bin, err := serverproc.Build(ctx, "/tmp")
	if err != nil {
		log.Fatal(err)
	}
	opts := serverproc.Options{Binary: bin, ConsulAddr: "127.0.0.1:8500", NomadAddr: "http://127.0.0.1:4646"}
	a, err := serverproc.Start(ctx, opts)
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()
	b, err := serverproc.Start(ctx, opts)
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	leader, err := serverproc.WaitActive(ctx, a, b)
	if err != nil {
		log.Fatal(err)
	}
	killed := time.Now()
	leader.Kill()
	others := []*serverproc.Server{a, b}
	if leader == a {
		others = others[1:]
	} else {
		others = others[:1]
	}
	next, err := serverproc.WaitActive(ctx, others...)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s leads %s after the kill\n", next.URL(), time.Since(killed))
}
