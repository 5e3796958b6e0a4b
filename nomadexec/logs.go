package nomadexec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
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
// The logs are read through the Nomad agent the Executor's client talks to, which forwards
// the read to the allocation's node, over the client's own connections. (The Nomad API's
// AllocFS dials the node with a new HTTP client per call, whose keep-alive connections stay
// open after the read: a few hundred reads in a row pass Nomad's limit of connections per
// client address, and Nomad then refuses every call of the address with HTTP 429.) A read
// needs the allocation's ID only, not its namespace: Nomad takes the namespace from the
// allocation itself, for the token's read-logs (or read-fs) check too, whatever namespace the
// request names; so each stream costs one call, with no lookup of the allocation first.
//
// Errors wrap ErrNotFound when Nomad no longer has the allocation or its logs (the servers or
// its node garbage-collected it), else ErrNomad (the node holding the allocation may be down,
// or Nomad refused the call for now: reading again later may work).
func (e *Executor) Logs(ctx context.Context, allocID string, max int) (stdout, stderr []byte, err error) {
	if max < 1 {
		return nil, nil, nil
	}
	tail := func(logType string) ([]byte, error) {
		buf, err := e.readLog(ctx, allocID, logType, "end", int64(max), -1)
		if len(buf) > max {
			buf = buf[len(buf)-max:]
		}
		return buf, err
	}
	if stdout, err = tail("stdout"); err != nil {
		return nil, nil, err
	}
	if stderr, err = tail("stderr"); err != nil {
		return nil, nil, err
	}
	return stdout, stderr, nil
}

// ReadLog returns up to limit bytes of the task's stdout or stderr (logType) in allocation
// allocID, from byte offset on, and the offset after what it returned: passing that offset to
// the next call follows a live log. It reads as Logs does, with the same errors.
func (e *Executor) ReadLog(ctx context.Context, allocID, logType string, offset int64, limit int) ([]byte, int64, error) {
	if logType != "stdout" && logType != "stderr" {
		return nil, offset, fmt.Errorf("log type %q: want stdout or stderr", logType)
	}
	buf, err := e.readLog(ctx, allocID, logType, "start", offset, int64(limit))
	if err != nil {
		return nil, offset, err
	}
	return buf, offset + int64(len(buf)), nil
}

// readLog reads one of the task's logs ("stdout" or "stderr") from offset bytes after origin
// ("start" or "end"), at most limit bytes (all when limit < 0).
func (e *Executor) readLog(ctx context.Context, allocID, logType, origin string, offset, limit int64) ([]byte, error) {
	q := (&nomadapi.QueryOptions{Params: map[string]string{
		"task":   TaskName,
		"type":   logType,
		"origin": origin,
		"offset": strconv.FormatInt(offset, 10),
		"plain":  "true", // the bytes themselves, not JSON frames
	}}).WithContext(ctx)
	body, err := e.client.Raw().Response("/v1/client/fs/logs/"+allocID, q)
	if err != nil {
		var ue nomadapi.UnexpectedResponseError
		if errors.As(err, &ue) && ue.StatusCode() == http.StatusNotFound {
			// The client answers 404 before the task started, and when it no longer
			// has the allocation (garbage-collected on the node).
			if strings.Contains(ue.Body(), "not started") {
				return nil, nil
			}
			return nil, fmt.Errorf("read %s of allocation %s: %w: %w", logType, allocID, ErrNotFound, err)
		}
		return nil, fmt.Errorf("read %s of allocation %s: %w: %w", logType, allocID, ErrNomad, err)
	}
	defer body.Close()
	var r io.Reader = body
	if limit >= 0 {
		r = io.LimitReader(body, limit)
	}
	// Reading to the end before closing returns the connection to the client's pool.
	buf, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read %s of allocation %s: %w: %w", logType, allocID, ErrNomad, err)
	}
	return buf, nil
}
