package rules

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestStateFinished(t *testing.T) {
	want := map[State]bool{
		None:           false,
		Scheduled:      false,
		Queued:         false,
		Running:        false,
		UpForRetry:     false,
		Success:        true,
		Failed:         true,
		UpstreamFailed: true,
		Skipped:        true,
		"removed":      false, // a state this package does not know is still pending
	}
	got := map[State]bool{}
	for s := range want {
		got[s] = s.Finished()
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Finished() mismatch (-want +got):\n%s", diff)
	}
}
