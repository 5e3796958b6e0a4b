package engine

import (
	"fmt"
	"testing"
	"time"

	"github.com/dagflow/dagflow/hcl/spec"
	"github.com/dagflow/dagflow/state"
)

// TestNextPoke: the next poke is the first moment after now at the phase, whatever now is.
func TestNextPoke(t *testing.T) {
	base := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	tests := map[string]struct {
		phase uint64
		now   time.Time
		want  time.Time
	}{
		"before the phase in the interval": {uint64(3 * time.Second), base.Add(time.Second), base.Add(3 * time.Second)},
		"at the phase: the next interval":  {uint64(3 * time.Second), base.Add(3 * time.Second), base.Add(13 * time.Second)},
		"after the phase":                  {uint64(3 * time.Second), base.Add(5 * time.Second), base.Add(13 * time.Second)},
		"phase beyond the interval wraps":  {uint64(23 * time.Second), base.Add(time.Second), base.Add(3 * time.Second)},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := nextPoke(tt.phase, 10*time.Second, tt.now); !got.Equal(tt.want) {
				t.Errorf("nextPoke = %s, want %s", got, tt.want)
			}
		})
	}
}

// TestPokePhaseSpreads: 1,000 sensors of one run with a 10 s interval poke in every second of
// it, no second holding more than twice its share.
func TestPokePhaseSpreads(t *testing.T) {
	r := &run{rec: state.Run{DAG: "d", ID: "manual__2026-12-07T12:00:00Z"}}
	const n, interval = 1000, 10 * time.Second
	base := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	perSecond := map[int]int{}
	for i := range n {
		tk := &task{spec: &spec.Task{Name: fmt.Sprintf("s%d", i)}}
		at := nextPoke(pokePhase(r, tk), interval, base)
		perSecond[int(at.Sub(base)/time.Second)]++
	}
	if len(perSecond) != 10 {
		t.Errorf("pokes fall in %d distinct seconds of the interval, want 10: %v", len(perSecond), perSecond)
	}
	for s, k := range perSecond {
		if k > 2*n/10 {
			t.Errorf("second %d holds %d pokes, over twice the mean of %d", s, k, n/10)
		}
	}
}
