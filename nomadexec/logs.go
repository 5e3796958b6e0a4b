package nomadexec

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	nomadapi "github.com/hashicorp/nomad/api"
)

// Logs returns the last max bytes (at most) of the stdout and of the stderr of the task
// (TaskName) of allocation allocID, read through Nomad's client filesystem API. It works
// while the allocation runs and after it ended, until Nomad garbage-collects it; logs must
// therefore be copied out when the task ends. A tail may start in the middle of a line or of
// a UTF-8 sequence. The logs of a task that never started (a driver failure, an allocation
// stopped while pending) are empty, not an error. max below 1 reads nothing.
//
// Errors wrap ErrNotFound when Nomad no longer has the allocation or its logs (the servers or
// its node garbage-collected it), else ErrNomad (the node holding the allocation may be down).
func (e *Executor) Logs(ctx context.Context, allocID string, max int) (stdout, stderr []byte, err error) {
	if max < 1 {
		return nil, nil, nil
	}
	alloc, _, err := e.client.Allocations().Info(allocID, (&nomadapi.QueryOptions{Namespace: allNamespaces}).WithContext(ctx))
	if err != nil {
		if isNotFound(err) {
			return nil, nil, fmt.Errorf("get allocation %s: %w", allocID, ErrNotFound)
		}
		return nil, nil, fmt.Errorf("get allocation %s: %w: %w", allocID, ErrNomad, err)
	}
	if stdout, err = e.logTail(ctx, alloc, "stdout", max); err != nil {
		return nil, nil, err
	}
	if stderr, err = e.logTail(ctx, alloc, "stderr", max); err != nil {
		return nil, nil, err
	}
	return stdout, stderr, nil
}

// logTail reads the last max bytes of one of the task's logs ("stdout" or "stderr").
func (e *Executor) logTail(ctx context.Context, alloc *nomadapi.Allocation, logType string, max int) ([]byte, error) {
	cancel := make(chan struct{})
	defer close(cancel)
	q := (&nomadapi.QueryOptions{Namespace: alloc.Namespace}).WithContext(ctx)
	frames, errs := e.client.AllocFS().Logs(alloc, false, TaskName, logType, "end", int64(max), cancel, q)
	var buf []byte
	for {
		select {
		case f, ok := <-frames:
			if !ok {
				if len(buf) > max {
					buf = buf[len(buf)-max:]
				}
				return buf, nil
			}
			buf = append(buf, f.Data...)
		case err := <-errs:
			var ue nomadapi.UnexpectedResponseError
			if errors.As(err, &ue) && ue.StatusCode() == http.StatusNotFound {
				// The client answers 404 before the task started, and when it no longer
				// has the allocation (garbage-collected on the node).
				if strings.Contains(ue.Body(), "not started") {
					return nil, nil
				}
				return nil, fmt.Errorf("read %s of allocation %s: %w: %w", logType, alloc.ID, ErrNotFound, err)
			}
			return nil, fmt.Errorf("read %s of allocation %s: %w: %w", logType, alloc.ID, ErrNomad, err)
		}
	}
}
