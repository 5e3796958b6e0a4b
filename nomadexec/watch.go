package nomadexec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"
)

const (
	// DefaultWatchMinBackoff is the first wait before a watch reconnects to a stream that
	// failed. It is short because a dropped connection (a Nomad server restart, a load balancer
	// timeout) usually reconnects at once, and every second waited delays the DAG.
	DefaultWatchMinBackoff = 500 * time.Millisecond

	// DefaultWatchMaxBackoff bounds the wait between reconnects while Nomad stays unreachable,
	// so a watch notices within half a minute that Nomad is back without hammering it meanwhile.
	DefaultWatchMaxBackoff = 30 * time.Second

	// watchStableAfter is how long a stream must have run for its end to count as a new
	// failure, with the backoff starting over, rather than as one more failed attempt.
	watchStableAfter = 10 * time.Second

	// watchBuffer is the capacity of a watch's output channel: room for a snapshot's burst
	// while the consumer catches up.
	watchBuffer = 64
)

// AllocUpdate is the state of one allocation of one of the Executor's jobs at Index.
type AllocUpdate struct {
	AllocStatus

	// Index is the Nomad Raft index of the change. Updates arrive in Index order, snapshots
	// included, until Nomad's index goes backwards; passing the highest Index processed to
	// Watch resumes there.
	Index uint64

	// Snapshot says the update comes from a listing made on (re)connecting rather than from an
	// event: the allocation's state at Index, which may have gone through states not reported.
	Snapshot bool
}

// Watch streams the changes of the allocations of the Executor's jobs (IDs starting with its
// prefix), in every namespace, from Nomad's event stream (topic Allocation), from index on
// (0: from the current state). An allocation's updates arrive in the order they happened, but
// not every state is reported: Nomad's client batches its reports, so a short task may go from
// "pending" straight to "complete".
//
// On connecting, and again on every reconnect, it first lists every allocation of the
// Executor's jobs and sends, as Snapshot updates in Index order, each one that changed at or
// after the last index it had (all of them when that is 0); then it follows the stream from
// there. So nothing is missed when the stream was down, or when Nomad's event buffer (100
// indexes by default) no longer holds the index asked for. Updates may repeat: the consumer
// must be idempotent. Allocations garbage-collected or purged while the watch was away are not
// reported; the consumer's reconciliation (Status) covers them.
//
// The listing is one request that returns every allocation of the prefix's jobs Nomad still
// holds, whatever index the watch resumes from: on a busy cluster, megabytes per reconnect.
//
// Concurrency and failure: Watch returns at once. Its goroutine owns the returned channel and
// closes it when ctx ends, and only then. A stream error is logged and followed by a
// reconnect after a backoff (DefaultWatchMinBackoff doubling to DefaultWatchMaxBackoff,
// jittered), resuming from the last index. When Nomad's index goes backwards (a cluster
// restored or rebuilt), the watch starts over from 0 with a full snapshot. A consumer that
// stops reading blocks the watch, not Nomad; Nomad drops a stream not read for long, and the
// watch then reconnects as after any failure.
func (e *Executor) Watch(ctx context.Context, index uint64) <-chan AllocUpdate {
	out := make(chan AllocUpdate, watchBuffer)
	go e.watch(ctx, index, out)
	return out
}

// watch runs streams until ctx ends, then closes out.
func (e *Executor) watch(ctx context.Context, index uint64, out chan<- AllocUpdate) {
	defer close(out)
	logger := e.logger.Named("watch")
	last := index
	backoff := DefaultWatchMinBackoff
	for {
		started := time.Now()
		err := e.watchOnce(ctx, &last, out)
		if ctx.Err() != nil {
			return
		}
		if time.Since(started) > watchStableAfter {
			backoff = DefaultWatchMinBackoff
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		logger.Warn("allocation event stream failed, reconnecting", "error", err, "index", last, "wait", wait)
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		backoff = min(2*backoff, DefaultWatchMaxBackoff)
	}
}

// watchOnce subscribes to the event stream after *last, sends a snapshot of what changed since
// *last, then follows the stream until it fails or ctx ends, advancing *last as it sends.
func (e *Executor) watchOnce(ctx context.Context, last *uint64, out chan<- AllocUpdate) error {
	logger := e.logger.Named("watch")
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// Subscribe before listing, so that nothing that changes in between is missed: the stream
	// holds it, and its events at or below the listing's index are skipped as stale. The
	// stream is decoded here rather than by the Nomad API's EventStream, which decodes each
	// event into maps, then its allocation through reflection: about eight times the CPU, and
	// seventeen times the memory, of decoding only the fields an AllocStatus needs.
	body, err := e.client.Raw().Response("/v1/event/stream", (&nomadapi.QueryOptions{
		Namespace: allNamespaces,
		Params:    map[string]string{"topic": string(nomadapi.TopicAllocation) + ":*", "index": strconv.FormatUint(*last, 10)},
	}).WithContext(ctx))
	if err != nil {
		return fmt.Errorf("subscribe to allocation events: %w", err)
	}
	defer body.Close()

	// A regexp anchored at the start; the prefix holds no metacharacter but ".".
	filter := `JobID matches "^` + strings.ReplaceAll(e.prefix, ".", "[.]") + `"`
	q := (&nomadapi.QueryOptions{Namespace: allNamespaces, Filter: filter}).WithContext(ctx)
	stubs, meta, err := e.client.Allocations().List(q)
	if err != nil {
		return err
	}
	if meta.LastIndex < *last {
		logger.Warn("nomad index went backwards, starting over", "index", *last, "nomad_index", meta.LastIndex)
		*last = 0
	}
	snap := make([]AllocUpdate, 0, len(stubs))
	for _, s := range stubs {
		// At the index itself too: a consumer that stopped halfway through the updates of
		// one index resumes at that index.
		if s.ModifyIndex >= *last && strings.HasPrefix(s.JobID, e.prefix) {
			snap = append(snap, AllocUpdate{AllocStatus: allocStatusFromStub(s), Index: s.ModifyIndex, Snapshot: true})
		}
	}
	sort.SliceStable(snap, func(i, j int) bool { return snap[i].Index < snap[j].Index })
	logger.Debug("connected to allocation event stream", "index", *last, "snapshot", len(snap), "nomad_index", meta.LastIndex)
	for _, u := range snap {
		if !send(ctx, out, u) {
			return ctx.Err()
		}
	}
	*last = max(*last, meta.LastIndex)

	var prev uint64 // the stream's previous index
	dec := json.NewDecoder(body)
	for {
		var batch eventBatch
		if err := dec.Decode(&batch); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, io.EOF) {
				return errors.New("event stream closed")
			}
			return fmt.Errorf("read allocation events: %w", err)
		}
		if batch.Index == 0 && len(batch.Events) == 0 {
			continue // a heartbeat
		}
		if batch.Index < prev {
			*last = 0
			return errIndexBackwards
		}
		prev = batch.Index
		if batch.Index <= *last {
			continue // covered by the snapshot, or sent already
		}
		for _, ev := range batch.Events {
			if ev.Topic != nomadapi.TopicAllocation {
				continue
			}
			alloc := ev.Payload.Allocation
			if alloc == nil {
				logger.Warn("skipping allocation event without allocation", "index", batch.Index, "key", ev.Key)
				continue
			}
			if !strings.HasPrefix(alloc.JobID, e.prefix) {
				continue
			}
			if !send(ctx, out, AllocUpdate{AllocStatus: alloc.status(), Index: batch.Index}) {
				return ctx.Err()
			}
		}
		*last = batch.Index
	}
}

// eventBatch is one message of Nomad's event stream: the events of one index, or, with
// neither, a heartbeat. Decoding it reads only the fields declared here; a field of another
// type than declared fails the stream, whose reconnect's listing then reports the
// allocations.
type eventBatch struct {
	Index  uint64
	Events []struct {
		Topic   nomadapi.Topic
		Key     string
		Payload struct{ Allocation *allocEvent }
	}
}

// allocEvent holds the fields of an allocation, as its events carry it, that its AllocStatus
// is made of; the decoder skips the rest (resources, metrics, networks, ...).
type allocEvent struct {
	ID            string
	JobID         string
	Namespace     string
	NodeID        string
	NodeName      string
	ClientStatus  string
	DesiredStatus string
	TaskStates    map[string]*nomadapi.TaskState
	CreateIndex   uint64
	ModifyIndex   uint64
}

// status returns the allocation's AllocStatus.
func (a allocEvent) status() AllocStatus {
	s := AllocStatus{
		AllocID:       a.ID,
		JobID:         a.JobID,
		Namespace:     a.Namespace,
		NodeID:        a.NodeID,
		NodeName:      a.NodeName,
		ClientStatus:  a.ClientStatus,
		DesiredStatus: a.DesiredStatus,
		CreateIndex:   a.CreateIndex,
		ModifyIndex:   a.ModifyIndex,
	}
	s.setTask(a.TaskStates)
	return s
}

// send sends u on out unless ctx ends first, and reports whether it did.
func send(ctx context.Context, out chan<- AllocUpdate, u AllocUpdate) bool {
	select {
	case out <- u:
		return true
	case <-ctx.Done():
		return false
	}
}
