// Package chaos runs dagflow under faults and checks that every task try ran exactly once, no
// run was lost and every run finished: the scenarios of `make chaos` (docs/chaos.md).
//
// A Stack is the Consul, Nomad and PostgreSQL every scenario runs against, as durable agents
// whose restarts keep their state. A Cluster is one dagflow installation on it, with its
// server processes (package internal/serverproc), its DAG and its Ledger: the file, outside
// dagflow, where every task records its start. Run runs one Scenario as Params size it, and
// Check compares what dagflow recorded with the ledger. TestChaos runs them all, short in
// `go test ./...`, long with -chaos.long.
package chaos
