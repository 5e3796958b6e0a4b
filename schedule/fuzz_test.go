package schedule_test

import (
	"strings"
	"testing"
	"time"

	"github.com/dagflow/dagflow/schedule"
	"github.com/robfig/cron/v3"
)

// fuzzZones have daylight saving (Berlin), 30-minute daylight saving (Lord Howe), offsets that
// are not whole hours (Kathmandu, Chatham) or not whole minutes (Monrovia until 1972), and
// daylight saving that started at midnight (Sao Paulo until 2019).
var fuzzZones = []*time.Location{
	berlin, mustLoad("Australia/Lord_Howe"), mustLoad("Asia/Kathmandu"), mustLoad("Pacific/Chatham"),
	mustLoad("Africa/Monrovia"), mustLoad("America/Sao_Paulo"), time.UTC,
}

// FuzzParse checks that Parse never panics, and that every schedule it accepts moves forward:
// Next(t) is after t, and Intervals yields adjacent intervals. For cron expressions, Next(t)
// must also be a tick, and when it is near, no tick may come between. The seed corpus runs in
// every go test; go test -fuzz FuzzParse explores from it.
func FuzzParse(f *testing.F) {
	seeds := []string{
		// Valid.
		"0 2 * * *", "*/15 9-17 * * MON-FRI", "0 0 1 jan,jul *", "0 0 29 2 *", "30 2 * * *",
		"0 0 15 * SUN", "5/10 * * * ?", "0 0-23/7 * * 1-5", "@yearly", "@annually", "@monthly",
		"@weekly", "@daily", "@midnight", "@hourly", "@every 1s", "@every 1h30m", "@every 36h",
		// Invalid.
		"", "0 25 * * *", "* * * *", "0 0 0 2 * *", "0 0 30 2 *", "@Daily", "@every", "@every 0s",
		"@every -1h", "@every 1d", "TZ=UTC", "CRON_TZ=Europe/Berlin 0 2 * * *", "1,,2 * * * *",
		"*-5 * * * *", "0 17-9 * * *", "*/0 * * * *", "0 0 * * 7", ", * * * *", "-1 * * * *",
		"1-2-3 * * * *", "*/2/3 * * * *", "0 0 * * FRY", "\x00", "@", "@every 9223372036854775807ns",
	}
	for i, s := range seeds {
		f.Add(s, int64(1767225600+i*86413)) // 2026 onwards, at varying times of day
	}
	f.Add("30 2 * * *", int64(1792888200))       // 2026-10-25 00:30 UTC, in the hour Berlin repeats
	f.Add("45 2 * * *", int64(1775310000))       // 2026-04-04 13:40 UTC, before Chatham's clocks go back
	f.Add("0-5 2 * * *", int64(1775314876))      // 2026-04-04 15:01 UTC, in the half hour Lord Howe repeats
	f.Add("0 0 * * *", int64(1539486000))        // 2018-10-14, when Sao Paulo skipped midnight
	f.Add("@every 1s", int64(-1e9))              // 1938
	f.Add("*/7 * * * *", int64(-2208988800-123)) // wraps around to 2400

	anchor := time.Date(2026, 1, 1, 0, 7, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, expr string, sec int64) {
		// Keep t within 1900 to 2400: far enough for any DAG, and clear of the limits of
		// time.Time arithmetic.
		const lo, span = -2208988800, 15778800000
		sec = (sec-lo)%span + lo
		if sec < lo {
			sec += span
		}
		tm := time.Unix(sec, int64(uint64(sec)%1e9)).UTC()
		for _, loc := range fuzzZones {
			checkSchedule(t, expr, loc, anchor, tm)
		}
	})
}

func checkSchedule(t *testing.T, expr string, loc *time.Location, anchor, tm time.Time) {
	s, err := schedule.Parse(expr, loc, anchor)
	if err != nil {
		if err.Error() == "" {
			t.Errorf("Parse(%q) returned an empty error", expr)
		}
		return
	}
	next := s.Next(tm)
	if !next.After(tm) {
		t.Fatalf("Parse(%q) in %s: Next(%s) = %s, not after it", expr, loc, tm, next)
	}
	if !strings.HasPrefix(strings.TrimSpace(expr), "@every") {
		spec := robfigSpec(t, expr)
		if !isTick(spec, loc, next) {
			t.Fatalf("Parse(%q) in %s: Next(%s) = %s, which is not a tick", expr, loc, tm, next)
		}
		if next.Sub(tm) < 3*time.Hour {
			if want := firstMatch(spec, loc, tm); !next.Equal(want) {
				t.Fatalf("Parse(%q) in %s: Next(%s) = %s, but %s comes first", expr, loc, tm, next, want)
			}
		}
	}

	prev := tm
	n := 0
	for iv := range s.Intervals(tm) {
		if n == 0 && (iv.Start.Before(tm) || iv.Start.After(next)) {
			t.Fatalf("Parse(%q) in %s: Intervals(%s) starts at %s, not between it and Next, %s", expr, loc, tm, iv.Start, next)
		}
		if n > 0 && !iv.Start.Equal(prev) {
			t.Fatalf("Parse(%q) in %s: Intervals(%s) yielded %v, which does not start where the last ended, %s", expr, loc, tm, iv, prev)
		}
		if !iv.End.After(iv.Start) {
			t.Fatalf("Parse(%q) in %s: Intervals(%s) yielded the empty interval %v", expr, loc, tm, iv)
		}
		prev = iv.End
		if n++; n == 3 {
			break
		}
	}
}

// robfigSpec parses a cron expression or descriptor Parse accepted with robfig/cron, for the
// bit sets that define its ticks.
func robfigSpec(t *testing.T, expr string) *cron.SpecSchedule {
	t.Helper()
	sched, err := cron.ParseStandard(strings.TrimSpace(expr))
	if err != nil {
		t.Fatalf("Parse accepted %q, which robfig/cron rejects: %v", expr, err)
	}
	return sched.(*cron.SpecSchedule)
}

// isTick reports whether x is a tick of spec in loc: a whole minute whose wall-clock time
// matches every field.
func isTick(spec *cron.SpecSchedule, loc *time.Location, x time.Time) bool {
	const star = 1 << 63
	w := x.In(loc)
	if w.Second() != 0 || w.Nanosecond() != 0 {
		return false
	}
	dom := spec.Dom&(1<<w.Day()) != 0
	dow := spec.Dow&(1<<w.Weekday()) != 0
	day := dom || dow
	if spec.Dom&star != 0 || spec.Dow&star != 0 {
		day = dom && dow
	}
	return day && spec.Month&(1<<w.Month()) != 0 && spec.Hour&(1<<w.Hour()) != 0 && spec.Minute&(1<<w.Minute()) != 0
}

// firstMatch returns the first tick of spec in loc after t, trying every wall-clock minute for
// eight days, or the zero time.
func firstMatch(spec *cron.SpecSchedule, loc *time.Location, t time.Time) time.Time {
	// Step through the wall-clock minutes of each span of constant UTC offset; the offset may
	// not be whole minutes (Monrovia before 1972).
	w := t.In(loc)
	x := t.Add(-time.Duration(w.Second())*time.Second - time.Duration(w.Nanosecond()))
	for x = x.Add(time.Minute); x.Before(t.Add(8 * 24 * time.Hour)); x = x.Add(time.Minute) {
		if xs := x.In(loc).Second(); xs != 0 {
			// An offset change moved the seconds; realign to this span's whole minutes.
			x = x.Add(-time.Duration(xs) * time.Second)
			if !x.After(t) || x.In(loc).Second() != 0 {
				x = x.Add(time.Duration(60-x.In(loc).Second()) * time.Second)
			}
		}
		if isTick(spec, loc, x) {
			return x.In(loc)
		}
	}
	return time.Time{}
}

// TestNextAroundOffsetChanges compares Next with the definition of a cron tick, minute by
// minute, around every UTC offset change in 2026 in the fuzz zones and in Sao Paulo's last
// daylight saving year, 2018. Daylight saving changes by 30 minutes (Lord Howe Island) and in
// zones a quarter hour off the hour (Chatham) are where robfig/cron's own Next goes wrong.
func TestNextAroundOffsetChanges(t *testing.T) {
	exprs := []string{
		"* * * * *", "*/7 * * * *", "0 * * * *", "59 * * * *", "15,45 1-3 * * *", "30 2 * * *",
		"0-5 2 * * *", "0 0 * * *", "0 3 * * SUN", "45 2 * * *", "30 1 * * *",
	}
	for _, loc := range fuzzZones {
		for _, c := range offsetChanges(loc, 2026, 2018) {
			for _, expr := range exprs {
				s := mustParse(t, expr, loc, time.Time{})
				spec := robfigSpec(t, expr)
				for tm := c.Add(-3 * time.Hour); tm.Before(c.Add(4 * time.Hour)); tm = tm.Add(3*time.Minute + 17*time.Second) {
					want := firstMatch(spec, loc, tm)
					if got := s.Next(tm); !got.Equal(want) {
						t.Errorf("%q in %s: Next(%s) = %s, want %s", expr, loc, tm.In(loc), got, want)
					}
				}
			}
		}
	}
}

// TestNextMatchesRobfig shows that Next treats daylight saving as robfig/cron does, in zones
// that move their clocks by whole hours, where robfig's Next is right.
func TestNextMatchesRobfig(t *testing.T) {
	exprs := []string{
		"* * * * *", "*/7 * * * *", "0 * * * *", "30 2 * * *", "0 2 * * *", "0 3 * * *", "0 0 * * *",
		"15,45 1-3 * * *", "0 3 * * SUN", "@daily", "@weekly",
	}
	for _, loc := range []*time.Location{berlin, mustLoad("America/New_York"), mustLoad("America/Sao_Paulo")} {
		for _, c := range offsetChanges(loc, 2026, 2018) {
			for _, expr := range exprs {
				s := mustParse(t, expr, loc, time.Time{})
				ref := robfigSpec(t, expr)
				ref.Location = loc
				for tm := c.Add(-26 * time.Hour); tm.Before(c.Add(26 * time.Hour)); tm = tm.Add(7*time.Minute + 13*time.Second) {
					if got, want := s.Next(tm), ref.Next(tm); !got.Equal(want) {
						t.Errorf("%q in %s: Next(%s) = %s, robfig/cron says %s", expr, loc, tm.In(loc), got, want.In(loc))
					}
				}
			}
		}
	}
}

// offsetChanges returns the hours, in the given years, at whose end loc's UTC offset changes.
func offsetChanges(loc *time.Location, years ...int) []time.Time {
	var changes []time.Time
	for _, y := range years {
		for h := time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC); h.Year() == y; h = h.Add(time.Hour) {
			_, a := h.In(loc).Zone()
			if _, b := h.Add(time.Hour).In(loc).Zone(); a != b {
				changes = append(changes, h)
			}
		}
	}
	return changes
}
