package schedule_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/dagflow/dagflow/schedule"
	"github.com/google/go-cmp/cmp"
)

func TestCatchup(t *testing.T) {
	utc := time.UTC
	day := func(d int) time.Time { return at(utc, 2026, 1, d, 0, 0) }
	daily := func(start, end int) schedule.Interval { return schedule.Interval{Start: day(start), End: day(end)} }
	anchor := at(utc, 2026, 1, 1, 3, 0)
	tests := []struct {
		name             string
		expr             string
		loc              *time.Location
		policy           string
		from, until, now time.Time
		want             schedule.Backlog
	}{
		{"all", "@daily", utc, schedule.CatchupAll, day(1), time.Time{}, day(4).Add(12 * time.Hour),
			schedule.Backlog{Count: 3, First: daily(1, 2), Last: daily(3, 4)}},
		{"latest", "@daily", utc, schedule.CatchupLatest, day(1), time.Time{}, day(4).Add(12 * time.Hour),
			schedule.Backlog{Count: 1, First: daily(3, 4), Last: daily(3, 4)}},
		{"none", "@daily", utc, schedule.CatchupNone, day(1), time.Time{}, day(4).Add(12 * time.Hour),
			schedule.Backlog{}},
		{"an interval ending now is due", "@daily", utc, schedule.CatchupAll, day(1), time.Time{}, day(4),
			schedule.Backlog{Count: 3, First: daily(1, 2), Last: daily(3, 4)}},
		{"an interval ending after now is not", "@daily", utc, schedule.CatchupAll, day(1), time.Time{}, day(4).Add(-time.Nanosecond),
			schedule.Backlog{Count: 2, First: daily(1, 2), Last: daily(2, 3)}},
		{"from between ticks skips the partial interval", "@daily", utc, schedule.CatchupAll, day(1).Add(6 * time.Hour), time.Time{}, day(4),
			schedule.Backlog{Count: 2, First: daily(2, 3), Last: daily(3, 4)}},
		{"nothing ended yet", "@daily", utc, schedule.CatchupAll, day(1), time.Time{}, day(1).Add(23 * time.Hour),
			schedule.Backlog{}},
		{"nothing ended yet, latest", "@daily", utc, schedule.CatchupLatest, day(1), time.Time{}, day(1).Add(23 * time.Hour),
			schedule.Backlog{}},
		{"now before from", "@daily", utc, schedule.CatchupAll, day(10), time.Time{}, day(4),
			schedule.Backlog{}},
		{"one interval", "@daily", utc, schedule.CatchupAll, day(1), time.Time{}, day(2),
			schedule.Backlog{Count: 1, First: daily(1, 2), Last: daily(1, 2)}},
		{"end date on a tick includes the interval starting there", "@daily", utc, schedule.CatchupAll, day(1), day(2), day(10),
			schedule.Backlog{Count: 2, First: daily(1, 2), Last: daily(2, 3)}},
		{"end date between ticks", "@daily", utc, schedule.CatchupAll, day(1), day(2).Add(12 * time.Hour), day(10),
			schedule.Backlog{Count: 2, First: daily(1, 2), Last: daily(2, 3)}},
		{"end date, latest", "@daily", utc, schedule.CatchupLatest, day(1), day(2).Add(12 * time.Hour), day(10),
			schedule.Backlog{Count: 1, First: daily(2, 3), Last: daily(2, 3)}},
		{"end date after now", "@daily", utc, schedule.CatchupAll, day(1), day(20), day(4),
			schedule.Backlog{Count: 3, First: daily(1, 2), Last: daily(3, 4)}},
		{"end date before from", "@daily", utc, schedule.CatchupAll, day(5), day(2), day(10),
			schedule.Backlog{}},
		{"end date before the first tick", "@daily", utc, schedule.CatchupLatest, day(1).Add(time.Hour), day(1).Add(2 * time.Hour), day(10),
			schedule.Backlog{}},
		{"@every counts from its anchor", "@every 6h", utc, schedule.CatchupAll, anchor, time.Time{}, day(2).Add(4 * time.Hour),
			schedule.Backlog{Count: 4,
				First: schedule.Interval{Start: anchor, End: anchor.Add(6 * time.Hour)},
				Last:  schedule.Interval{Start: anchor.Add(18 * time.Hour), End: anchor.Add(24 * time.Hour)}}},
		{"@every from before its anchor", "@every 6h", utc, schedule.CatchupLatest, day(1), time.Time{}, day(2).Add(4 * time.Hour),
			schedule.Backlog{Count: 1,
				First: schedule.Interval{Start: anchor.Add(18 * time.Hour), End: anchor.Add(24 * time.Hour)},
				Last:  schedule.Interval{Start: anchor.Add(18 * time.Hour), End: anchor.Add(24 * time.Hour)}}},
		{"hourly on the short daylight saving day", "@hourly", berlin, schedule.CatchupAll,
			at(berlin, 2026, 3, 29, 0, 0), time.Time{}, at(berlin, 2026, 3, 30, 0, 0),
			schedule.Backlog{Count: 23,
				First: schedule.Interval{Start: at(berlin, 2026, 3, 29, 0, 0), End: at(berlin, 2026, 3, 29, 1, 0)},
				Last:  schedule.Interval{Start: at(berlin, 2026, 3, 29, 23, 0), End: at(berlin, 2026, 3, 30, 0, 0)}}},
		{"hourly on the long daylight saving day", "@hourly", berlin, schedule.CatchupAll,
			at(berlin, 2026, 10, 25, 0, 0), time.Time{}, at(berlin, 2026, 10, 26, 0, 0),
			schedule.Backlog{Count: 25,
				First: schedule.Interval{Start: at(berlin, 2026, 10, 25, 0, 0), End: at(berlin, 2026, 10, 25, 1, 0)},
				Last:  schedule.Interval{Start: at(berlin, 2026, 10, 25, 23, 0), End: at(berlin, 2026, 10, 26, 0, 0)}}},
		{"yearly after a decade, latest", "@yearly", utc, schedule.CatchupLatest,
			at(utc, 2016, 1, 1, 0, 0), time.Time{}, at(utc, 2026, 6, 1, 0, 0),
			schedule.Backlog{Count: 1,
				First: schedule.Interval{Start: at(utc, 2025, 1, 1, 0, 0), End: at(utc, 2026, 1, 1, 0, 0)},
				Last:  schedule.Interval{Start: at(utc, 2025, 1, 1, 0, 0), End: at(utc, 2026, 1, 1, 0, 0)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustParse(t, tt.expr, tt.loc, anchor)
			got, err := s.Catchup(tt.policy, tt.from, tt.until, tt.now)
			if err != nil {
				t.Fatalf("Catchup: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Catchup(%q, %s, %s, %s) (-want +got):\n%s", tt.policy, tt.from, tt.until, tt.now, diff)
			}
		})
	}
}

// TestCatchupTruncation counts the backlog of "@every 1s", the schedule MaxBacklogCount is for.
func TestCatchupTruncation(t *testing.T) {
	utc := time.UTC
	y2k1 := time.Date(2001, 1, 1, 0, 0, 0, 0, utc)
	s := mustParse(t, "@every 1s", utc, y2k1)
	tests := []struct {
		name             string
		policy           string
		from, until, now time.Time
		want             schedule.Backlog
	}{
		{"truncated", schedule.CatchupAll, y2k1, time.Time{}, at(utc, 2026, 1, 1, 0, 0),
			schedule.Backlog{Count: schedule.MaxBacklogCount, Truncated: true,
				First: schedule.Interval{Start: y2k1, End: y2k1.Add(time.Second)},
				Last:  schedule.Interval{Start: at(utc, 2026, 1, 1, 0, 0).Add(-time.Second), End: at(utc, 2026, 1, 1, 0, 0)}}},
		{"latest is not truncated", schedule.CatchupLatest, y2k1, time.Time{}, at(utc, 2026, 1, 1, 0, 0),
			schedule.Backlog{Count: 1,
				First: schedule.Interval{Start: at(utc, 2026, 1, 1, 0, 0).Add(-time.Second), End: at(utc, 2026, 1, 1, 0, 0)},
				Last:  schedule.Interval{Start: at(utc, 2026, 1, 1, 0, 0).Add(-time.Second), End: at(utc, 2026, 1, 1, 0, 0)}}},
		{"exactly the maximum is not truncated", schedule.CatchupAll, y2k1, time.Time{}, y2k1.Add(schedule.MaxBacklogCount * time.Second),
			schedule.Backlog{Count: schedule.MaxBacklogCount,
				First: schedule.Interval{Start: y2k1, End: y2k1.Add(time.Second)},
				Last:  schedule.Interval{Start: y2k1.Add((schedule.MaxBacklogCount - 1) * time.Second), End: y2k1.Add(schedule.MaxBacklogCount * time.Second)}}},
		{"one more than the maximum is truncated", schedule.CatchupAll, y2k1, time.Time{}, y2k1.Add((schedule.MaxBacklogCount + 1) * time.Second),
			schedule.Backlog{Count: schedule.MaxBacklogCount, Truncated: true,
				First: schedule.Interval{Start: y2k1, End: y2k1.Add(time.Second)},
				Last:  schedule.Interval{Start: y2k1.Add(schedule.MaxBacklogCount * time.Second), End: y2k1.Add((schedule.MaxBacklogCount + 1) * time.Second)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Catchup(tt.policy, tt.from, tt.until, tt.now)
			if err != nil {
				t.Fatalf("Catchup: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Catchup(%q, %s, %s, %s) (-want +got):\n%s", tt.policy, tt.from, tt.until, tt.now, diff)
			}
		})
	}
}

func TestCatchupUnknownPolicy(t *testing.T) {
	tests := []struct {
		policy string
		want   string
	}{
		{"", `unknown catchup policy ""; use "all", "latest" or "none"`},
		{"All", `unknown catchup policy "All"; use "all", "latest" or "none" (did you mean "all"?)`},
		{"lastest", `unknown catchup policy "lastest"; use "all", "latest" or "none" (did you mean "latest"?)`},
		{"true", `unknown catchup policy "true"; use "all", "latest" or "none"`},
	}
	s := mustParse(t, "@daily", time.UTC, time.Time{})
	for _, tt := range tests {
		t.Run(tt.policy, func(t *testing.T) {
			_, err := s.Catchup(tt.policy, at(time.UTC, 2026, 1, 1, 0, 0), time.Time{}, at(time.UTC, 2026, 2, 1, 0, 0))
			if err == nil || err.Error() != tt.want {
				t.Errorf("Catchup(%q) error = %v, want %q", tt.policy, err, tt.want)
			}
		})
	}
}

// TestCatchupMatchesIntervals checks Catchup, which works backwards from now for the last
// interval, against walking Intervals forwards, over schedules with regular and irregular gaps.
func TestCatchupMatchesIntervals(t *testing.T) {
	anchor := at(berlin, 2026, 1, 1, 0, 13)
	exprs := []string{
		"@hourly", "@daily", "@weekly", "@monthly", "*/15 9-17 * * MON-FRI", "0 0 1 * MON",
		"* * 1 1 *", "30 2 * * *", "0 0 29 2 *", "@every 5h", "@every 1h30m",
	}
	froms := []time.Time{at(berlin, 2025, 12, 30, 0, 0), at(berlin, 2026, 3, 28, 17, 0), anchor}
	nows := []time.Time{at(berlin, 2026, 1, 1, 0, 0), at(berlin, 2026, 3, 29, 12, 0), at(berlin, 2026, 11, 1, 4, 5)}
	untils := []time.Time{{}, at(berlin, 2026, 2, 2, 2, 2), at(berlin, 2026, 10, 25, 2, 30)}
	for _, expr := range exprs {
		s := mustParse(t, expr, berlin, anchor)
		for _, from := range froms {
			for _, until := range untils {
				for _, now := range nows {
					want := walk(s, from, until, now)
					for _, policy := range []string{schedule.CatchupAll, schedule.CatchupLatest} {
						name := fmt.Sprintf("%s/%s/from=%s/until=%s/now=%s", expr, policy,
							from.Format(time.RFC3339), until.Format(time.RFC3339), now.Format(time.RFC3339))
						got, err := s.Catchup(policy, from, until, now)
						if err != nil {
							t.Fatalf("%s: %v", name, err)
						}
						w := want
						if policy == schedule.CatchupLatest && w.Count > 0 {
							w = schedule.Backlog{Count: 1, First: w.Last, Last: w.Last}
						}
						if diff := cmp.Diff(w, got); diff != "" {
							t.Errorf("%s (-want +got):\n%s", name, diff)
						}
					}
				}
			}
		}
	}
}

// walk is the obvious implementation of CatchupAll.
func walk(s *schedule.Schedule, from, until, now time.Time) schedule.Backlog {
	var b schedule.Backlog
	for iv := range s.Intervals(from) {
		if iv.End.After(now) || (!until.IsZero() && iv.Start.After(until)) {
			break
		}
		if b.Count == 0 {
			b.First = iv
		}
		b.Count++
		b.Last = iv
	}
	return b
}

// BenchmarkCatchupAll counts a backlog that reaches MaxBacklogCount: an hourly DAG in a zone
// with daylight saving, started more than eleven years ago.
func BenchmarkCatchupAll(b *testing.B) {
	s := mustParse(b, "@hourly", berlin, time.Time{})
	from, now := at(berlin, 2015, 1, 1, 0, 0), at(berlin, 2026, 6, 1, 0, 0)
	for b.Loop() {
		if bl, err := s.Catchup(schedule.CatchupAll, from, time.Time{}, now); err != nil || !bl.Truncated {
			b.Fatalf("Catchup = %+v, %v; want a truncated backlog", bl, err)
		}
	}
}

// BenchmarkCatchupLatest finds the last interval of the same backlog without counting it.
func BenchmarkCatchupLatest(b *testing.B) {
	s := mustParse(b, "@hourly", berlin, time.Time{})
	from, now := at(berlin, 2015, 1, 1, 0, 0), at(berlin, 2026, 6, 1, 0, 0)
	for b.Loop() {
		if bl, err := s.Catchup(schedule.CatchupLatest, from, time.Time{}, now); err != nil || bl.Count != 1 {
			b.Fatalf("Catchup = %+v, %v; want one run", bl, err)
		}
	}
}

// BenchmarkNext steps through a cron schedule in a zone with daylight saving.
func BenchmarkNext(b *testing.B) {
	s := mustParse(b, "*/15 9-17 * * MON-FRI", berlin, time.Time{})
	t := at(berlin, 2026, 1, 1, 0, 0)
	for b.Loop() {
		t = s.Next(t)
	}
}
