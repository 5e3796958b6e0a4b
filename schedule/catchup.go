package schedule

import (
	"errors"
	"fmt"
	"time"
)

// Catch-up policies: which intervals that already ended a DAG runs when it is created or
// unpaused, or when the scheduler comes back after being away. The values match the DAG
// language's catchup setting.
const (
	CatchupAll    = "all"    // every interval that ended
	CatchupLatest = "latest" // only the most recent interval that ended
	CatchupNone   = "none"   // none of them; the first run is for the next interval to end
)

// MaxBacklogCount is where Catchup stops counting intervals. A backlog is counted one interval
// at a time, and "@every 1s" with a start date in 2001 has about 800 million intervals behind
// it: counting them would stall the scheduler for minutes, and nobody wants that many runs
// anyway. A hundred thousand is far more runs than any DAG should catch up on, and counting
// that many takes tens of milliseconds.
const MaxBacklogCount = 100000

// Backlog describes the runs a DAG would create now for intervals that already ended.
type Backlog struct {
	// Count is the number of runs: for CatchupNone 0, for CatchupLatest 0 or 1, and for
	// CatchupAll at most MaxBacklogCount.
	Count int

	// First and Last are the intervals of the first and last run, equal when Count is 1 and
	// zero when Count is 0. Last is exact even when Truncated.
	First, Last Interval

	// Truncated reports that there are more than MaxBacklogCount intervals, so counting
	// stopped and Count is a lower bound.
	Truncated bool
}

// Catchup returns the backlog a DAG with this schedule would start at now if nothing ran since
// from: its start date, or the End of the last run's interval. The intervals owed are those
// with Start at or after from and End at or before now and, when until (the end date) is not
// zero, Start at or before until. The policy (CatchupAll, CatchupLatest or CatchupNone) picks
// all of them, only the last one, or none; any other policy is an error.
func (s *Schedule) Catchup(policy string, from, until, now time.Time) (Backlog, error) {
	switch policy {
	case CatchupAll, CatchupLatest:
	case CatchupNone:
		return Backlog{}, nil
	default:
		msg := fmt.Sprintf("unknown catchup policy %q; use %q, %q or %q", policy, CatchupAll, CatchupLatest, CatchupNone)
		if sug := suggest(policy, []string{CatchupAll, CatchupLatest, CatchupNone}, typoDistance(len(policy))); sug != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", sug)
		}
		return Backlog{}, errors.New(msg)
	}

	owed := func(iv Interval) bool {
		return !iv.End.After(now) && (until.IsZero() || !iv.Start.After(until))
	}
	first := Interval{Start: s.atOrAfter(from)}
	first.End = s.Next(first.Start)
	if first.Start.IsZero() || !first.End.After(first.Start) || !owed(first) {
		return Backlog{}, nil
	}
	last, ok := s.lastOwed(first, until, now)
	if !ok {
		// Unreachable for a schedule whose first interval is owed; an empty backlog is the
		// safe answer.
		return Backlog{}, nil
	}
	if policy == CatchupLatest {
		return Backlog{Count: 1, First: last, Last: last}, nil
	}

	b := Backlog{First: first, Last: last}
	for iv := range s.Intervals(first.Start) {
		if b.Count == MaxBacklogCount {
			b.Truncated = true
			break
		}
		b.Count++
		if iv.Start.Equal(last.Start) {
			break
		}
	}
	return b, nil
}

// lastOwed returns the last interval owed, given that first is owed. It works backwards from
// now instead of counting forwards, so CatchupLatest costs the same after a week or a decade.
func (s *Schedule) lastOwed(first Interval, until, now time.Time) (Interval, bool) {
	// end is the last tick at or before now that closes an interval starting at or after
	// first.Start; start is the tick before it.
	end, ok := s.LastAtOrBefore(now, first.End)
	if !ok {
		return Interval{}, false
	}
	start, ok := s.LastAtOrBefore(end.Add(-time.Nanosecond), first.Start)
	if !ok {
		return Interval{}, false
	}
	if until.IsZero() || !start.After(until) {
		return Interval{Start: start, End: end}, true
	}
	// The end date cuts the backlog short: the last interval owed starts at the last tick at
	// or before until. It ends before start, which ends at or before now.
	start, ok = s.LastAtOrBefore(until, first.Start)
	if !ok {
		return Interval{}, false
	}
	return Interval{Start: start, End: s.Next(start)}, true
}
