package nomadexec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	nomadapi "github.com/hashicorp/nomad/api"
)

// ErrTooLarge is wrapped by ReadFile's error when the file is longer than asked for.
var ErrTooLarge = errors.New("file too large")

// ReadFile returns the content of the file at path (relative to the allocation directory, as
// "alloc/out.json") in allocation allocID, read through Nomad's client filesystem API as Logs
// reads logs. found is false, with no error, when the allocation exists but the file does not.
// A file longer than max bytes is not read: the error wraps ErrTooLarge. Other errors wrap
// ErrNotFound when Nomad no longer has the allocation, else ErrNomad.
func (e *Executor) ReadFile(ctx context.Context, allocID, path string, max int64) (content []byte, found bool, err error) {
	q := (&nomadapi.QueryOptions{Params: map[string]string{"path": path}}).WithContext(ctx)
	var info nomadapi.AllocFileInfo
	if _, err := e.client.Raw().Query("/v1/client/fs/stat/"+allocID, &info, q); err != nil {
		var ue nomadapi.UnexpectedResponseError
		if errors.As(err, &ue) && ue.StatusCode() == http.StatusNotFound {
			// Nomad answers 404 both for an allocation it no longer has and for a path that
			// does not exist in one it has; only the message tells them apart.
			if strings.Contains(strings.ToLower(ue.Body()), "no such file") {
				return nil, false, nil
			}
			return nil, false, fmt.Errorf("stat %s of allocation %s: %w: %w", path, allocID, ErrNotFound, err)
		}
		return nil, false, fmt.Errorf("stat %s of allocation %s: %w: %w", path, allocID, ErrNomad, err)
	}
	if info.IsDir {
		return nil, false, fmt.Errorf("%s of allocation %s is a directory, not a file", path, allocID)
	}
	if info.Size > max {
		return nil, true, fmt.Errorf("%s of allocation %s has %d bytes, more than %d: %w", path, allocID, info.Size, max, ErrTooLarge)
	}
	body, err := e.client.Raw().Response("/v1/client/fs/cat/"+allocID, q)
	if err != nil {
		return nil, false, fmt.Errorf("read %s of allocation %s: %w: %w", path, allocID, ErrNomad, err)
	}
	defer body.Close()
	// One byte more than allowed tells a file that grew after the stat.
	content, err = io.ReadAll(io.LimitReader(body, max+1))
	if err != nil {
		return nil, false, fmt.Errorf("read %s of allocation %s: %w: %w", path, allocID, ErrNomad, err)
	}
	if int64(len(content)) > max {
		return nil, true, fmt.Errorf("%s of allocation %s has more than %d bytes: %w", path, allocID, max, ErrTooLarge)
	}
	return content, true, nil
}
