package rules

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// RunType says how a run was started. It is the first part of the run's ID and the value of
// run.type in the DAG language.
type RunType string

// Run types, with Airflow's names. They are called Run* because Scheduled is a task State.
const (
	RunScheduled RunType = "scheduled" // created by the scheduler for a data interval that ended
	RunManual    RunType = "manual"    // triggered by a user, with `dagflow trigger` or the API
	RunBackfill  RunType = "backfill"  // created by a backfill for a past data interval

	// RunAssetTriggered is a run started because the assets its DAG is scheduled on were
	// updated; its logical date is when the leader saw its condition hold.
	RunAssetTriggered RunType = "asset_triggered"
)

// Valid reports whether t is one of RunScheduled, RunManual, RunBackfill and RunAssetTriggered.
func (t RunType) Valid() bool {
	switch t {
	case RunScheduled, RunManual, RunBackfill, RunAssetTriggered:
		return true
	}
	return false
}

// runIDSep separates the run type from the date in a run ID, as in Airflow.
const runIDSep = "__"

// Errors of this package, for errors.Is.
var (
	// ErrInvalidRunID is wrapped by every error ParseRunID returns.
	ErrInvalidRunID = errors.New("invalid run ID")
)

// RunID returns the ID of the run of type t with the given logical date: the type, "__", and
// the date in RFC 3339 in UTC with as many fractional digits as it needs and no more, as in
// "scheduled__2026-11-22T02:00:00Z", "backfill__2026-11-20T02:00:00Z" or
// "manual__2026-11-22T09:13:27.481Z". This is Airflow's form, except that Airflow writes the
// offset as "+00:00".
//
// The ID is a function of its arguments only, so however often and by whichever scheduler a
// run is created, even by a new leader after a failover, it gets the same ID, and the store's
// check-and-set on that ID makes sure it exists once. Two logical dates give two IDs, down to
// the nanosecond, and the monotonic clock reading and the location of logicalDate do not
// matter.
//
// A manual run's logical date is its trigger time, as in Airflow when the user gives no date,
// so its ID is the trigger time to the nanosecond with trailing zeros trimmed. The caller
// takes the time once, when it accepts the trigger, and keeps it, so that retrying the
// creation of the run produces the same ID rather than a second run. A manual trigger whose
// user gives a logical date uses that date instead.
//
// IDs consist of ASCII letters, digits and the characters "_", "-", ":" and ".", which Consul
// keys, URL paths and Nomad job IDs all take as they are; nomadexec.JobID still maps ":" to
// "_" (and adds a hash that keeps job IDs unique), to keep job IDs free of it. Dates
// must lie in the years 0 to 9999 in UTC, which RFC 3339 can write, and t must be valid; for
// other arguments the result is still a string, but ParseRunID rejects it.
func RunID(t RunType, logicalDate time.Time) string {
	return string(t) + runIDSep + logicalDate.UTC().Format(time.RFC3339Nano)
}

// ParseRunID returns the run type and the logical date, in UTC, of a run ID that RunID made.
// It accepts only what RunID produces, so ParseRunID(id) succeeds exactly when
// RunID(ParseRunID(id)) == id: other spellings of the same date, such as an offset of "+00:00"
// or trailing zeros in the fraction, are rejected, with an error that names the ID of that
// run. Errors wrap ErrInvalidRunID.
func ParseRunID(id string) (RunType, time.Time, error) {
	typ, date, ok := strings.Cut(id, runIDSep)
	if !ok {
		return "", time.Time{}, fmt.Errorf("%w %q: want TYPE%sDATE, such as %q",
			ErrInvalidRunID, id, runIDSep, RunID(RunScheduled, time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)))
	}
	t := RunType(typ)
	if !t.Valid() {
		return "", time.Time{}, fmt.Errorf("%w %q: unknown run type %q; want %s, %s, %s or %s",
			ErrInvalidRunID, id, typ, RunScheduled, RunManual, RunBackfill, RunAssetTriggered)
	}
	when, err := time.Parse(time.RFC3339Nano, date)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("%w %q: %q is not an RFC 3339 date such as %q",
			ErrInvalidRunID, id, date, "2026-11-22T02:00:00Z")
	}
	when = when.UTC()
	if canonical := RunID(t, when); canonical != id {
		if y := when.Year(); y < 0 || y > 9999 {
			// time.Parse reads four-digit years only, but an offset can push the date past them.
			return "", time.Time{}, fmt.Errorf("%w %q: the date lies outside the years 0 to 9999 in UTC",
				ErrInvalidRunID, id)
		}
		return "", time.Time{}, fmt.Errorf("%w %q: the date is not written in UTC with \"Z\" and without trailing zeros; the ID of that run is %q",
			ErrInvalidRunID, id, canonical)
	}
	return t, when, nil
}
