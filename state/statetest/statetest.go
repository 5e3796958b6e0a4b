// Package statetest gives tests dagflow state on a real Consul agent.
package statetest

import (
	"fmt"
	"sync/atomic"
	"testing"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/dagflow/dagflow/internal/devstack"
	"github.com/dagflow/dagflow/state"
)

// Stores starts one Consul dev agent for t and returns it, a client for it, and a function that
// makes Stores on it, each under a prefix of its own so that subtests do not see each other.
func Stores(t testing.TB) (newStore func(testing.TB) *state.Store, agent *devstack.Consul, client *consulapi.Client) {
	t.Helper()
	agent = devstack.StartConsulT(t)
	client = devstack.ConsulClientT(t, agent)
	var n atomic.Int64
	return func(t testing.TB) *state.Store {
		t.Helper()
		s, err := state.New(client, fmt.Sprintf("test%d/dagflow", n.Add(1)))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}, agent, client
}
