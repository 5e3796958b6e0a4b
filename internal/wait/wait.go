// Package wait holds the one way dagflow pauses: for a duration, or until the context ends,
// whichever comes first.
package wait

import (
	"context"
	"time"
)

// Sleep waits for d or until ctx ends, and reports whether the full d passed. It stops its
// timer on return, so a loop that is cancelled early leaves nothing behind.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
