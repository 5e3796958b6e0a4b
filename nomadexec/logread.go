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

// ReadLog returns up to limit bytes of the task's stdout or stderr (logType) in allocation
// allocID, from byte offset on, and the offset after what it returned: passing that offset to
// the next call follows a live log. It reads through the client's own connections, as Logs
// does. Errors wrap ErrNotFound when Nomad no longer has the allocation, else ErrNomad.
func (e *Executor) ReadLog(ctx context.Context, allocID, logType string, offset int64, limit int) ([]byte, int64, error) {
	if logType != "stdout" && logType != "stderr" {
		return nil, offset, fmt.Errorf("log type %q: want stdout or stderr", logType)
	}
	alloc, _, err := e.client.Allocations().Info(allocID, (&nomadapi.QueryOptions{Namespace: allNamespaces}).WithContext(ctx))
	if err != nil {
		if isNotFound(err) {
			return nil, offset, fmt.Errorf("get allocation %s: %w", allocID, ErrNotFound)
		}
		return nil, offset, fmt.Errorf("get allocation %s: %w: %w", allocID, ErrNomad, err)
	}
	q := (&nomadapi.QueryOptions{Namespace: alloc.Namespace, Params: map[string]string{
		"task":   TaskName,
		"type":   logType,
		"origin": "start",
		"offset": strconv.FormatInt(offset, 10),
		"plain":  "true",
	}}).WithContext(ctx)
	body, err := e.client.Raw().Response("/v1/client/fs/logs/"+alloc.ID, q)
	if err != nil {
		var ue nomadapi.UnexpectedResponseError
		if errors.As(err, &ue) && ue.StatusCode() == http.StatusNotFound {
			if strings.Contains(ue.Body(), "not started") {
				return nil, offset, nil
			}
			return nil, offset, fmt.Errorf("read %s of allocation %s: %w: %w", logType, alloc.ID, ErrNotFound, err)
		}
		return nil, offset, fmt.Errorf("read %s of allocation %s: %w: %w", logType, alloc.ID, ErrNomad, err)
	}
	defer body.Close()
	buf, err := io.ReadAll(io.LimitReader(body, int64(limit)))
	if err != nil {
		return nil, offset, fmt.Errorf("read %s of allocation %s: %w: %w", logType, alloc.ID, ErrNomad, err)
	}
	return buf, offset + int64(len(buf)), nil
}
