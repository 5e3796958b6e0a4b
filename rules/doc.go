// Package rules decides what happens to the tasks of a DAG run: which task instances may
// run now, which are skipped or fail because of their upstream tasks, when a failed task is
// retried, and under which ID a run is recorded.
//
// These are the scheduling rules, apart from the scheduler that applies them (package engine,
// the leader's loop). Nothing here does I/O, reads a clock or keeps state: the engine reads
// task states from Consul, calls these functions, and writes back what they decide. Every function gives the same answer for the same arguments,
// so a scheduler that takes over after a failover decides exactly as its predecessor did.
//
// The semantics are Apache Airflow's, so DAGs ported from Airflow behave the same: the task
// instance states (State), the nine trigger rules (Decide), retries with optional exponential
// backoff (RetryDelay, CanRetry) and run IDs such as "scheduled__2026-11-22T02:00:00Z" (RunID,
// ParseRunID). Where dagflow departs from Airflow, the documentation of the function says so.
package rules
