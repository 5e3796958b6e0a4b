package state_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/dagflow/dagflow/state"
)

// TestAssetRetention: sequences go on counting while only the latest events are kept, fewer
// when big outputs would make the record too large; Since returns the newest events after a
// sequence.
func TestAssetRetention(t *testing.T) {
	a := &state.Asset{Name: "warehouse.orders"}
	for i := 0; i < state.MaxAssetEvents+5; i++ {
		a.Add(state.AssetEvent{ID: string(rune('a' + i%26))})
	}
	if a.Seq != state.MaxAssetEvents+5 || len(a.Events) != state.MaxAssetEvents || a.Events[0].Seq != 6 {
		t.Errorf("after %d events: seq %d, %d kept from %d", state.MaxAssetEvents+5, a.Seq, len(a.Events), a.Events[0].Seq)
	}
	if got := a.Since(a.Seq-3, 10); len(got) != 3 || got[0].Seq != a.Seq-2 {
		t.Errorf("Since(seq-3) = %d events", len(got))
	}
	if got := a.Since(0, 2); len(got) != 2 || got[1].Seq != a.Seq {
		t.Errorf("Since(0, 2) = %+v", got)
	}
	big := json.RawMessage(`{"x":"` + strings.Repeat("x", 60<<10) + `"}`)
	for range 5 {
		a.Add(state.AssetEvent{ID: "big", Outputs: big})
	}
	b, _ := json.Marshal(a)
	if len(b) > 200<<10 || len(a.Events) < 2 {
		t.Errorf("with big outputs: %d events kept, %d bytes", len(a.Events), len(b))
	}
	if a.Events[len(a.Events)-1].Seq != a.Seq {
		t.Errorf("newest event not kept")
	}
}

// TestCheckAssetName refuses names posted from outside that cannot be keys or read back.
func TestCheckAssetName(t *testing.T) {
	for name, ok := range map[string]bool{
		"warehouse.orders": true, "s3://bucket/a b": false, "": false,
		"s3://bucket/path": true, strings.Repeat("a", 201): false, "tab\tname": false,
	} {
		if err := state.CheckAssetName(name); (err == nil) != ok {
			t.Errorf("CheckAssetName(%q) = %v", name, err)
		}
	}
}
