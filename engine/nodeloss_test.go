package engine

import (
	"strings"
	"testing"

	"github.com/dagflow/dagflow/nomadexec"
)

// TestOutcomeMessageNodeLost: an allocation Nomad marked lost (client status lost, desired
// status stop, as its reconciler leaves the allocations of a down node) reads as a lost node,
// naming it, not as a stop from outside dagflow; a real outside stop still reads as one.
func TestOutcomeMessageNodeLost(t *testing.T) {
	tests := map[string]struct {
		st   nomadexec.AllocStatus
		want []string
	}{
		"lost node": {
			st:   nomadexec.AllocStatus{ClientStatus: "lost", DesiredStatus: "stop", NodeName: "client-2", NodeID: "1f3e"},
			want: []string{"node lost", "client-2", "1f3e"},
		},
		"stopped outside": {
			st:   nomadexec.AllocStatus{ClientStatus: "complete", DesiredStatus: "stop"},
			want: []string{"stopped outside dagflow (stop)"},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got := outcomeMessage(&tt.st)
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("outcomeMessage = %q, want it to contain %q", got, w)
				}
			}
		})
	}
}
