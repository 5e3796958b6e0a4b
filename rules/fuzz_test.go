package rules

import (
	"errors"
	"testing"
	"time"

	"github.com/dagflow/dagflow/hcl/spec"
)

// FuzzParseRunID checks that ParseRunID accepts exactly the IDs RunID makes: whatever it
// accepts, RunID writes back unchanged, and whatever it rejects, it rejects with
// ErrInvalidRunID. The seeds run in every `go test`.
func FuzzParseRunID(f *testing.F) {
	for _, id := range []string{
		"scheduled__2026-11-22T02:00:00Z",
		"manual__2026-11-22T09:13:27.481Z",
		"manual__2026-11-22T09:13:27.481000007Z",
		"backfill__0000-01-01T00:00:00Z",
		"backfill__9999-12-31T23:59:59.999999999Z",
		"scheduled__2026-11-22T02:00:00+00:00",
		"scheduled__2026-11-22T03:00:00+01:00",
		"manual__2026-11-22T09:13:27.000Z",
		"manual__2026-11-22T09:13:27,5Z",
		"scheduled__9999-12-31T23:30:00-01:00",
		"scheduled__0000-01-01T00:30:00+01:00",
		"scheduled__2026-02-30T02:00:00Z",
		"scheduled__2026-11-22T24:00:00Z",
		"scheduled____2026-11-22T02:00:00Z",
		"daily__2026-11-22T02:00:00Z",
		"scheduled_2026-11-22T02:00:00Z",
		"scheduled__",
		"__",
		"",
	} {
		f.Add(id)
	}
	f.Fuzz(func(t *testing.T, id string) {
		typ, date, err := ParseRunID(id)
		if err != nil {
			if !errors.Is(err, ErrInvalidRunID) {
				t.Fatalf("ParseRunID(%q) error %v does not wrap ErrInvalidRunID", id, err)
			}
			return
		}
		if !typ.Valid() {
			t.Fatalf("ParseRunID(%q) = invalid type %q", id, typ)
		}
		if date.Location() != time.UTC {
			t.Fatalf("ParseRunID(%q) date %v is not in UTC", id, date)
		}
		if back := RunID(typ, date); back != id {
			t.Fatalf("RunID(ParseRunID(%q)) = %q", id, back)
		}
		if !runIDChars.MatchString(id) {
			t.Fatalf("ParseRunID accepted %q, which has characters outside %v", id, runIDChars)
		}
	})
}

// FuzzRunIDRoundTrip checks that ParseRunID gives back the type and date of every ID RunID
// makes for a date it can write.
func FuzzRunIDRoundTrip(f *testing.F) {
	f.Add(uint8(0), int64(1795312800), int64(0))           // 2026-11-22T02:00:00Z
	f.Add(uint8(1), int64(1795338807), int64(481_000_000)) // a manual trigger
	f.Add(uint8(2), int64(-62167219200), int64(0))         // 0000-01-01T00:00:00Z
	f.Add(uint8(2), int64(253402300799), int64(999_999_999))
	f.Fuzz(func(t *testing.T, typeIndex uint8, sec, nsec int64) {
		types := []RunType{RunScheduled, RunManual, RunBackfill}
		typ := types[int(typeIndex)%len(types)]
		date := time.Unix(sec, nsec).UTC()
		if y := date.Year(); y < 0 || y > 9999 {
			t.Skip("RFC 3339 cannot write the date")
		}
		id := RunID(typ, date)
		gotType, gotDate, err := ParseRunID(id)
		if err != nil {
			t.Fatalf("ParseRunID(RunID(%q, %v)): %v", typ, date, err)
		}
		if gotType != typ || !gotDate.Equal(date) {
			t.Fatalf("ParseRunID(%q) = %q, %v; want %q, %v", id, gotType, gotDate, typ, date)
		}
	})
}

// fuzzStates are the states FuzzDecideIsStable draws from, including one this package does
// not know.
var fuzzStates = []State{None, Scheduled, Queued, Running, UpForRetry, Success, Failed, UpstreamFailed, Skipped, "removed"}

// FuzzDecideIsStable checks the promise in Decide's documentation: once the decision is not
// Wait, upstream tasks that finish later never change whether the task runs.
func FuzzDecideIsStable(f *testing.F) {
	f.Add(uint8(0), []byte{5, 3, 8}, []byte{6, 6, 6})
	f.Add(uint8(3), []byte{5, 3, 0}, []byte{6, 7, 8})
	f.Add(uint8(4), []byte{6, 3, 4}, []byte{5, 5, 5})
	f.Add(uint8(7), []byte{8, 8, 2}, []byte{8, 8, 8})
	f.Fuzz(func(t *testing.T, ruleIndex uint8, before, finish []byte) {
		rules := append([]string{""}, spec.TriggerRules...)
		rule := rules[int(ruleIndex)%len(rules)]
		upstream := make([]State, len(before))
		for i, b := range before {
			upstream[i] = fuzzStates[int(b)%len(fuzzStates)]
		}
		first := Decide(rule, upstream)
		if first == Wait {
			return
		}
		// Finish some of the pending upstream tasks, in states chosen by finish.
		later := make([]State, len(upstream))
		copy(later, upstream)
		for i, s := range later {
			if !s.Finished() && i < len(finish) {
				later[i] = []State{Success, Failed, UpstreamFailed, Skipped}[int(finish[i])%4]
			}
		}
		second := Decide(rule, later)
		if second == Wait || (first == Run) != (second == Run) {
			t.Fatalf("Decide(%q, %v) = %v, but after upstream tasks finished, Decide(%q, %v) = %v",
				rule, upstream, first, rule, later, second)
		}
	})
}
