package schedule_test

import (
	"strings"
	"testing"
	"time"

	"github.com/dagflow/dagflow/schedule"
	"github.com/google/go-cmp/cmp"
)

// berlin is a zone with daylight saving: clocks go from 02:00 to 03:00 on 2026-03-29 and
// from 03:00 back to 02:00 on 2026-10-25.
var berlin = mustLoad("Europe/Berlin")

func mustLoad(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// at is time.Date with fewer arguments.
func at(loc *time.Location, year int, month time.Month, day, hour, min int) time.Time {
	return time.Date(year, month, day, hour, min, 0, 0, loc)
}

func mustParse(t testing.TB, expr string, loc *time.Location, anchor time.Time) *schedule.Schedule {
	t.Helper()
	s, err := schedule.Parse(expr, loc, anchor)
	if err != nil {
		t.Fatalf("Parse(%q): %v", expr, err)
	}
	return s
}

// ticks returns the first n ticks strictly after from.
func ticks(s *schedule.Schedule, from time.Time, n int) []time.Time {
	var out []time.Time
	for t := from; len(out) < n; {
		t = s.Next(t)
		out = append(out, t)
	}
	return out
}

func TestParse(t *testing.T) {
	utc := time.UTC
	anchor := time.Date(2026, 1, 1, 0, 7, 0, 0, utc)
	from := at(utc, 2026, 1, 1, 0, 0) // a Thursday
	tests := []struct {
		name string
		expr string
		loc  *time.Location
		want []time.Time
	}{
		{"daily at two", "0 2 * * *", utc, []time.Time{
			at(utc, 2026, 1, 1, 2, 0), at(utc, 2026, 1, 2, 2, 0), at(utc, 2026, 1, 3, 2, 0)}},
		{"office hours every quarter hour", "*/15 9-17 * * MON-FRI", utc, []time.Time{
			at(utc, 2026, 1, 1, 9, 0), at(utc, 2026, 1, 1, 9, 15), at(utc, 2026, 1, 1, 9, 30)}},
		{"office hours end on friday", "0 17 * * mon-fri", utc, []time.Time{
			at(utc, 2026, 1, 1, 17, 0), at(utc, 2026, 1, 2, 17, 0), at(utc, 2026, 1, 5, 17, 0)}},
		{"lists and ranges with steps", "0 0-12/6,23 * * *", utc, []time.Time{
			at(utc, 2026, 1, 1, 6, 0), at(utc, 2026, 1, 1, 12, 0), at(utc, 2026, 1, 1, 23, 0)}},
		{"month names", "0 12 1 jan,JUL *", utc, []time.Time{
			at(utc, 2026, 1, 1, 12, 0), at(utc, 2026, 7, 1, 12, 0), at(utc, 2027, 1, 1, 12, 0)}},
		{"day of month or day of week", "0 0 15 * SUN", utc, []time.Time{
			at(utc, 2026, 1, 4, 0, 0), at(utc, 2026, 1, 11, 0, 0), at(utc, 2026, 1, 15, 0, 0)}},
		{"leap day", "0 0 29 2 *", utc, []time.Time{
			at(utc, 2028, 2, 29, 0, 0), at(utc, 2032, 2, 29, 0, 0), at(utc, 2036, 2, 29, 0, 0)}},
		{"surrounding space", "  0 2 * * *\n", utc, []time.Time{
			at(utc, 2026, 1, 1, 2, 0), at(utc, 2026, 1, 2, 2, 0), at(utc, 2026, 1, 3, 2, 0)}},
		{"in a time zone", "0 2 * * *", berlin, []time.Time{
			at(berlin, 2026, 1, 1, 2, 0), at(berlin, 2026, 1, 2, 2, 0), at(berlin, 2026, 1, 3, 2, 0)}},
		{"nil location is UTC", "0 2 * * *", nil, []time.Time{
			at(utc, 2026, 1, 1, 2, 0), at(utc, 2026, 1, 2, 2, 0), at(utc, 2026, 1, 3, 2, 0)}},
		{"@yearly", "@yearly", utc, []time.Time{
			at(utc, 2027, 1, 1, 0, 0), at(utc, 2028, 1, 1, 0, 0), at(utc, 2029, 1, 1, 0, 0)}},
		{"@annually", "@annually", utc, []time.Time{
			at(utc, 2027, 1, 1, 0, 0), at(utc, 2028, 1, 1, 0, 0), at(utc, 2029, 1, 1, 0, 0)}},
		{"@monthly", "@monthly", utc, []time.Time{
			at(utc, 2026, 2, 1, 0, 0), at(utc, 2026, 3, 1, 0, 0), at(utc, 2026, 4, 1, 0, 0)}},
		{"@weekly starts on sunday", "@weekly", utc, []time.Time{
			at(utc, 2026, 1, 4, 0, 0), at(utc, 2026, 1, 11, 0, 0), at(utc, 2026, 1, 18, 0, 0)}},
		{"@daily", "@daily", utc, []time.Time{
			at(utc, 2026, 1, 2, 0, 0), at(utc, 2026, 1, 3, 0, 0), at(utc, 2026, 1, 4, 0, 0)}},
		{"@midnight", "@midnight", utc, []time.Time{
			at(utc, 2026, 1, 2, 0, 0), at(utc, 2026, 1, 3, 0, 0), at(utc, 2026, 1, 4, 0, 0)}},
		{"@hourly", "@hourly", utc, []time.Time{
			at(utc, 2026, 1, 1, 1, 0), at(utc, 2026, 1, 1, 2, 0), at(utc, 2026, 1, 1, 3, 0)}},
		{"@daily in a time zone", "@daily", berlin, []time.Time{ // from is 01:00 in Berlin
			at(berlin, 2026, 1, 2, 0, 0), at(berlin, 2026, 1, 3, 0, 0), at(berlin, 2026, 1, 4, 0, 0)}},
		{"@every counts from the anchor", "@every 90m", utc, []time.Time{
			at(utc, 2026, 1, 1, 0, 7), at(utc, 2026, 1, 1, 1, 37), at(utc, 2026, 1, 1, 3, 7)}},
		{"@every with extra space", "@every   1h ", utc, []time.Time{
			at(utc, 2026, 1, 1, 0, 7), at(utc, 2026, 1, 1, 1, 7), at(utc, 2026, 1, 1, 2, 7)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustParse(t, tt.expr, tt.loc, anchor)
			if diff := cmp.Diff(tt.want, ticks(s, from, len(tt.want))); diff != "" {
				t.Errorf("ticks after %s (-want +got):\n%s", from, diff)
			}
			if got, want := s.String(), strings.TrimSpace(tt.expr); got != want {
				t.Errorf("String() = %q, want %q", got, want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		expr string
		want string
	}{
		{"empty", "", `schedule is empty; use a cron expression such as "0 2 * * *" or a descriptor such as @daily`},
		{"blank", "  ", `schedule is empty; use a cron expression such as "0 2 * * *" or a descriptor such as @daily`},
		{"hour out of range", "0 25 * * *", `"0 25 * * *": hour 25 is out of range (0-23)`},
		{"minute out of range", "60 * * * *", `"60 * * * *": minute 60 is out of range (0-59)`},
		{"day of month zero", "0 0 0 * *", `"0 0 0 * *": day of month 0 is out of range (1-31)`},
		{"month out of range", "0 0 1 13 *", `"0 0 1 13 *": month 13 is out of range (1-12 or JAN-DEC)`},
		{"sunday as seven", "0 0 * * 7", `"0 0 * * 7": day of week 7 is out of range (0-6 or SUN-SAT); write Sunday as 0 or SUN`},
		{"huge number", "0 99999999999999999999 * * *", `"0 99999999999999999999 * * *": hour 99999999999999999999 is out of range (0-23)`},
		{"range end out of range", "0 9-24 * * *", `"0 9-24 * * *": hour 24 is out of range (0-23)`},
		{"too few fields", "0 2 * *", `"0 2 * *": has 4 fields, but a cron expression has 5: minute, hour, day of month, month and day of week`},
		{"seconds field", "0 0 2 * * *", `"0 0 2 * * *": has 6 fields, but a cron expression has 5: minute, hour, day of month, month and day of week (a seconds field is not supported)`},
		{"not a number", "x * * * *", `"x * * * *": minute "x" is not a number`},
		{"day name typo", "0 0 * * FRY", `"0 0 * * FRY": day of week "FRY" is not a number or a name (SUN-SAT); did you mean FRI?`},
		{"month name unknown", "0 0 1 Sept *", `"0 0 1 Sept *": month "Sept" is not a number or a name (JAN-DEC); did you mean SEP?`},
		{"negative number", "-5 * * * *", `"-5 * * * *": minute "-5" is missing the start of its range; negative numbers are not allowed`},
		{"two hyphens", "1-2-3 * * * *", `"1-2-3 * * * *": minute "1-2-3" has more than one range (-); negative numbers are not allowed`},
		{"open range", "0 9- * * *", `"0 9- * * *": hour "9-" is missing the end of its range`},
		{"backwards range", "0 17-9 * * *", `"0 17-9 * * *": hour range "17-9" starts after it ends; ranges cannot wrap around, so list both parts, such as 22-23,0-2`},
		{"backwards day range", "0 0 * * FRI-MON", `"0 0 * * FRI-MON": day of week range "FRI-MON" starts after it ends; ranges cannot wrap around, so list both parts, such as FRI-SAT,SUN-MON`},
		{"star in range", "*-5 * * * *", `"*-5 * * * *": minute "*" cannot be part of a range; use it alone or write a range such as 0-59`},
		{"empty list item", "1,,2 * * * *", `"1,,2 * * * *": minute "1,,2" has an empty item in its comma-separated list`},
		{"only a comma", ", * * * *", `", * * * *": minute "," has an empty item in its comma-separated list`},
		{"zero step", "*/0 * * * *", `"*/0 * * * *": step "0" in minute "*/0" must be a whole number of at least 1`},
		{"empty step", "*/ * * * *", `"*/ * * * *": step "" in minute "*/" must be a whole number of at least 1`},
		{"two steps", "*/2/3 * * * *", `"*/2/3 * * * *": minute "*/2/3" has more than one step (/)`},
		{"never runs in february", "0 0 30 2 *", `"0 0 30 2 *": never runs, because February has no day 30`},
		{"never runs in short months", "0 0 31 4,6,9,11 *", `"0 0 31 4,6,9,11 *": never runs, because none of the selected months has a day 31`},
		{"time zone prefix", "CRON_TZ=UTC 0 2 * * *", `"CRON_TZ=UTC 0 2 * * *": time zone prefixes are not supported; set the DAG's timezone instead`},
		{"time zone prefix alone", "TZ=UTC", `"TZ=UTC": time zone prefixes are not supported; set the DAG's timezone instead`},
		{"unknown descriptor", "@quarterly", `"@quarterly": unknown descriptor @quarterly; use one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly or @every DURATION`},
		{"descriptor in capitals", "@Daily", `"@Daily": unknown descriptor @Daily (did you mean @daily?); use one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly or @every DURATION`},
		{"@every typo", "@evry 5m", `"@evry 5m": unknown descriptor @evry (did you mean @every?); use one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly or @every DURATION`},
		{"descriptor with argument", "@daily 2", `"@daily 2": @daily takes nothing after it; remove "2"`},
		{"@every without duration", "@every", `"@every": @every needs an interval, such as "@every 1h30m"`},
		{"@every with spaces", "@every 1h 30m", `"@every 1h 30m": @every takes one duration without spaces, such as "@every 1h30m", not "1h 30m"`},
		{"@every in days", "@every 1d", `"@every 1d": "1d" is not a duration; write it with the units h, m and s, such as 90s, 15m, 1h30m, or 24h for a day`},
		{"@every zero", "@every 0s", `"@every 0s": the interval must be positive, not 0s`},
		{"@every negative", "@every -1h", `"@every -1h": the interval must be positive, not -1h`},
		{"@every too short", "@every 500ms", `"@every 500ms": the interval 500ms is shorter than the minimum of 1s`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := schedule.Parse(tt.expr, time.UTC, time.Time{})
			if err == nil {
				t.Fatalf("Parse(%q) = %v, want error %q", tt.expr, s, tt.want)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("Parse(%q) error:\n got: %s\nwant: %s", tt.expr, got, tt.want)
			}
		})
	}
}

func TestNextDST(t *testing.T) {
	tests := []struct {
		name string
		expr string
		t    time.Time
		want time.Time
	}{
		{"hourly skips the hour clocks jump over", "0 * * * *",
			at(berlin, 2026, 3, 29, 1, 0), at(berlin, 2026, 3, 29, 3, 0)},
		{"daily at 02:30 skips the day it does not exist", "30 2 * * *",
			at(berlin, 2026, 3, 28, 2, 30), at(berlin, 2026, 3, 30, 2, 30)},
		{"daily at 03:00 exists on the short day", "0 3 * * *",
			at(berlin, 2026, 3, 28, 3, 0), at(berlin, 2026, 3, 29, 3, 0)},
		{"the short day is 23 hours long", "@daily",
			at(berlin, 2026, 3, 29, 0, 0), at(berlin, 2026, 3, 29, 0, 0).Add(23 * time.Hour)},
		{"the long day is 25 hours long", "@daily",
			at(berlin, 2026, 10, 25, 0, 0), at(berlin, 2026, 10, 25, 0, 0).Add(25 * time.Hour)},
		{"hourly runs the repeated hour twice: first", "0 * * * *",
			at(berlin, 2026, 10, 25, 1, 0), time.Date(2026, 10, 25, 0, 0, 0, 0, time.UTC)},
		{"hourly runs the repeated hour twice: second", "0 * * * *",
			time.Date(2026, 10, 25, 0, 0, 0, 0, time.UTC), time.Date(2026, 10, 25, 1, 0, 0, 0, time.UTC)},
		{"hourly after the repeated hour", "0 * * * *",
			time.Date(2026, 10, 25, 1, 0, 0, 0, time.UTC), at(berlin, 2026, 10, 25, 3, 0)},
		{"daily at 02:30 fires at both 02:30s", "30 2 * * *",
			time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC), time.Date(2026, 10, 25, 1, 30, 0, 0, time.UTC)},
		{"input in another zone", "0 2 * * *",
			time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC), at(berlin, 2026, 7, 2, 2, 0)},
		{"strictly after a tick", "0 2 * * *",
			at(berlin, 2026, 7, 1, 2, 0), at(berlin, 2026, 7, 2, 2, 0)},
		{"fractional second before a tick", "0 2 * * *",
			at(berlin, 2026, 7, 1, 2, 0).Add(-time.Nanosecond), at(berlin, 2026, 7, 1, 2, 0)},
		{"leap day eight years away", "0 0 29 2 *",
			at(berlin, 2097, 3, 1, 0, 0), at(berlin, 2104, 2, 29, 0, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustParse(t, tt.expr, berlin, time.Time{})
			got := s.Next(tt.t)
			if !got.Equal(tt.want) {
				t.Errorf("Next(%s) = %s, want %s", tt.t, got, tt.want)
			}
			if got.Location() != berlin {
				t.Errorf("Next(%s) is in %s, want %s", tt.t, got.Location(), berlin)
			}
		})
	}
}

func TestEveryAnchoring(t *testing.T) {
	anchor := time.Date(2026, 1, 1, 0, 7, 30, 0, time.UTC)
	tests := []struct {
		name   string
		expr   string
		anchor time.Time
		t      time.Time
		want   time.Time
	}{
		{"before the anchor is the anchor", "@every 1h", anchor,
			anchor.Add(-100 * time.Hour), anchor},
		{"just before the anchor", "@every 1h", anchor,
			anchor.Add(-time.Nanosecond), anchor},
		{"at the anchor is the next tick", "@every 1h", anchor,
			anchor, anchor.Add(time.Hour)},
		{"between ticks", "@every 1h", anchor,
			anchor.Add(90 * time.Minute), anchor.Add(2 * time.Hour)},
		{"just before a tick", "@every 1h", anchor,
			anchor.Add(3*time.Hour - time.Nanosecond), anchor.Add(3 * time.Hour)},
		{"long after the anchor", "@every 7s", anchor,
			anchor.Add(7000*time.Hour + 3*time.Second), anchor.Add(7000*time.Hour + 7*time.Second)},
		{"zero anchor counts from the epoch", "@every 1h", time.Time{},
			time.Date(2026, 1, 1, 12, 34, 0, 0, time.UTC), time.Date(2026, 1, 1, 13, 0, 0, 0, time.UTC)},
		{"fractional duration", "@every 1.5s", anchor,
			anchor.Add(2 * time.Second), anchor.Add(3 * time.Second)},
		{"elapsed time across daylight saving", "@every 24h", at(berlin, 2026, 3, 28, 0, 0),
			at(berlin, 2026, 3, 29, 12, 0), at(berlin, 2026, 3, 30, 1, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustParse(t, tt.expr, berlin, tt.anchor)
			if got := s.Next(tt.t); !got.Equal(tt.want) {
				t.Errorf("Next(%s) = %s, want %s", tt.t, got, tt.want)
			}
		})
	}
}

// TestEveryCenturies covers gaps too long for time.Duration, where the arithmetic changes.
func TestEveryCenturies(t *testing.T) {
	anchor := time.Date(1700, 1, 1, 0, 0, 0, 0, time.UTC)
	s := mustParse(t, "@every 7s", time.UTC, anchor)
	for _, tm := range []time.Time{
		time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC),
		time.Date(2026, 5, 6, 7, 8, 9, 999, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
	} {
		got := s.Next(tm)
		if !got.After(tm) || got.Add(-7*time.Second).After(tm) {
			t.Errorf("Next(%s) = %s, want the first tick after it", tm, got)
		}
		if (got.Unix()-anchor.Unix())%7 != 0 || got.Nanosecond() != 0 {
			t.Errorf("Next(%s) = %s, which is not a whole number of 7s after %s", tm, got, anchor)
		}
	}
}

func TestIntervals(t *testing.T) {
	anchor := at(time.UTC, 2026, 1, 1, 3, 0)
	tests := []struct {
		name string
		expr string
		loc  *time.Location
		from time.Time
		want []schedule.Interval
	}{
		{"from between ticks starts at the next tick", "@daily", time.UTC, at(time.UTC, 2026, 1, 1, 12, 0), []schedule.Interval{
			{at(time.UTC, 2026, 1, 2, 0, 0), at(time.UTC, 2026, 1, 3, 0, 0)},
			{at(time.UTC, 2026, 1, 3, 0, 0), at(time.UTC, 2026, 1, 4, 0, 0)},
		}},
		{"from on a tick starts there", "@daily", time.UTC, at(time.UTC, 2026, 1, 1, 0, 0), []schedule.Interval{
			{at(time.UTC, 2026, 1, 1, 0, 0), at(time.UTC, 2026, 1, 2, 0, 0)},
			{at(time.UTC, 2026, 1, 2, 0, 0), at(time.UTC, 2026, 1, 3, 0, 0)},
		}},
		{"across the spring daylight saving change", "0 * * * *", berlin, at(berlin, 2026, 3, 29, 1, 0), []schedule.Interval{
			{at(berlin, 2026, 3, 29, 1, 0), at(berlin, 2026, 3, 29, 3, 0)},
			{at(berlin, 2026, 3, 29, 3, 0), at(berlin, 2026, 3, 29, 4, 0)},
		}},
		{"@every from before the anchor starts at the anchor", "@every 12h", time.UTC, at(time.UTC, 2025, 6, 1, 0, 0), []schedule.Interval{
			{anchor, anchor.Add(12 * time.Hour)},
			{anchor.Add(12 * time.Hour), anchor.Add(24 * time.Hour)},
			{anchor.Add(24 * time.Hour), anchor.Add(36 * time.Hour)},
		}},
		{"@every from on a tick starts there", "@every 12h", time.UTC, anchor.Add(24 * time.Hour), []schedule.Interval{
			{anchor.Add(24 * time.Hour), anchor.Add(36 * time.Hour)},
		}},
		{"@every from between ticks", "@every 12h", time.UTC, anchor.Add(time.Hour), []schedule.Interval{
			{anchor.Add(12 * time.Hour), anchor.Add(24 * time.Hour)},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustParse(t, tt.expr, tt.loc, anchor)
			var got []schedule.Interval
			for iv := range s.Intervals(tt.from) {
				got = append(got, iv)
				if len(got) == len(tt.want) {
					break
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Intervals(%s) (-want +got):\n%s", tt.from, diff)
			}
		})
	}
}

func TestLastAtOrBefore(t *testing.T) {
	utc := time.UTC
	floor := at(utc, 2026, 1, 1, 0, 0)
	daily := mustParse(t, "0 2 * * *", utc, floor)
	every := mustParse(t, "@every 90m", utc, at(utc, 2026, 1, 1, 0, 30))
	tests := []struct {
		name   string
		s      *schedule.Schedule
		t      time.Time
		want   time.Time
		wantOK bool
	}{
		{"cron between ticks", daily, at(utc, 2026, 1, 5, 13, 0), at(utc, 2026, 1, 5, 2, 0), true},
		{"cron on a tick", daily, at(utc, 2026, 1, 5, 2, 0), at(utc, 2026, 1, 5, 2, 0), true},
		{"cron just before a tick", daily, at(utc, 2026, 1, 5, 1, 59), at(utc, 2026, 1, 4, 2, 0), true},
		{"cron years later", daily, at(utc, 2031, 6, 1, 0, 0), at(utc, 2031, 5, 31, 2, 0), true},
		{"cron before the first tick after the floor", daily, at(utc, 2026, 1, 1, 1, 0), time.Time{}, false},
		{"cron before the floor", daily, at(utc, 2025, 12, 31, 3, 0), time.Time{}, false},
		{"every between ticks", every, at(utc, 2026, 1, 1, 3, 0), at(utc, 2026, 1, 1, 2, 0), true},
		{"every on a tick", every, at(utc, 2026, 1, 1, 2, 0), at(utc, 2026, 1, 1, 2, 0), true},
		{"every before its anchor", every, at(utc, 2026, 1, 1, 0, 10), time.Time{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.s.LastAtOrBefore(tt.t, floor)
			if ok != tt.wantOK || !got.Equal(tt.want) {
				t.Errorf("LastAtOrBefore(%s) = %s, %v; want %s, %v", tt.t, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
