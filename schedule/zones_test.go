package schedule

import (
	"testing"
	"time"
)

// TestZoneNamesLoad keeps the suggestion list honest: a suggested name must work. If it fails
// after a Go upgrade, run go generate to refresh zones.go.
func TestZoneNamesLoad(t *testing.T) {
	if len(zoneNames) < 400 {
		t.Fatalf("zoneNames has %d names; the IANA database has several hundred", len(zoneNames))
	}
	for _, name := range zoneNames {
		if _, err := time.LoadLocation(name); err != nil {
			t.Errorf("zoneNames lists %q, which does not load: %v", name, err)
		}
	}
}
