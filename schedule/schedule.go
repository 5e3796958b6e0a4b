// Package schedule decides when a DAG's runs are due.
//
// The semantics follow Apache Airflow. A schedule divides time into data intervals
// [Start, End): each tick of the schedule starts an interval and ends the previous one. The run
// for an interval has the logical date Start and becomes due at End, once the data for the
// whole interval exists. A daily DAG's run for 2026-01-01 therefore starts just after midnight
// on 2026-01-02.
//
// A schedule is a five-field cron expression, a descriptor such as @daily, or "@every
// DURATION" for fixed-length intervals counted from the DAG's start date. Parse reads one,
// Next and Intervals step through its ticks, and Catchup says which runs a DAG owes for
// intervals that ended while nothing was running. ParseDate and LoadLocation read the
// start_date, end_date and timezone settings that go with a schedule.
//
// The package embeds the IANA time zone database (time/tzdata), so time zones work on machines
// without /usr/share/zoneinfo, such as minimal containers.
package schedule

import (
	"errors"
	"fmt"
	"iter"
	"math/big"
	"math/bits"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // zones must load on hosts without /usr/share/zoneinfo

	"github.com/robfig/cron/v3"
)

// Schedule is a parsed schedule expression bound to a time zone: the set of instants, its
// ticks, at which one data interval ends and the next begins.
//
// A Schedule is immutable, so it is safe for concurrent use. The zero value is not usable;
// create one with Parse.
type Schedule struct {
	expr string
	loc  *time.Location

	// Exactly one of the two kinds is set.
	cron   *cron.SpecSchedule // cron expressions and descriptors
	every  time.Duration      // @every: ticks at anchor + k*every
	anchor time.Time
}

// Interval is one data interval [Start, End) of a schedule. Start is the logical date of the
// run that processes it; the run becomes due at End.
type Interval struct {
	Start, End time.Time
}

// MinEvery is the shortest interval "@every" accepts. Cron expressions cannot tick more often
// than once a minute; @every allows down to a second for tests and demos, but no finer, because
// a DAG run per millisecond would only flood the scheduler.
const MinEvery = time.Second

// descriptors are the named schedules Parse accepts, besides "@every".
var descriptors = []string{"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}

// Parse parses a schedule expression evaluated in loc:
//
//   - a five-field cron expression (minute, hour, day of month, month, day of week) such as
//     "0 2 * * *" or "*/15 9-17 * * MON-FRI", with the syntax of robfig/cron's standard parser;
//   - a descriptor: @yearly (or @annually), @monthly, @weekly, @daily (or @midnight) or
//     @hourly;
//   - "@every DURATION" with a Go duration of at least MinEvery, such as "@every 6h" or
//     "@every 1h30m". Its ticks are anchor, anchor+DURATION, anchor+2*DURATION, ..., like an
//     Airflow timedelta schedule; anchor is normally the DAG's start date, and a zero anchor
//     counts from the Unix epoch. The duration is elapsed time, so "@every 24h" drifts by an
//     hour of wall-clock time across a daylight saving change; use "@daily" to stay at midnight.
//
// A nil loc means UTC. Cron expressions and descriptors ignore anchor.
//
// Errors start with the quoted expression and say what to change, such as
// `"0 25 * * *": hour 25 is out of range (0-23)`. Parse also rejects cron expressions that
// can never fire, such as "0 0 30 2 *".
func Parse(expr string, loc *time.Location, anchor time.Time) (*Schedule, error) {
	if loc == nil {
		loc = time.UTC
	}
	text := strings.TrimSpace(expr)
	if text == "" {
		return nil, errors.New(`schedule is empty; use a cron expression such as "0 2 * * *" or a descriptor such as @daily`)
	}
	s := &Schedule{expr: text, loc: loc}
	var err error
	if strings.HasPrefix(text, "@") {
		err = s.parseDescriptor(text, anchor)
	} else {
		s.cron, err = parseCron(text)
	}
	if err != nil {
		return nil, fmt.Errorf("%q: %w", expr, err)
	}
	return s, nil
}

// parseDescriptor parses the @ forms.
func (s *Schedule) parseDescriptor(text string, anchor time.Time) error {
	fields := strings.Fields(text)
	name, args := fields[0], fields[1:]
	if name == "@every" {
		return s.parseEvery(args, anchor)
	}
	if !slices.Contains(descriptors, name) {
		msg := fmt.Sprintf("unknown descriptor %s; use one of %s or @every DURATION",
			name, strings.Join(descriptors, ", "))
		if sug := suggest(name, slices.Concat(descriptors, []string{"@every"}), typoDistance(len(name))); sug != "" {
			msg = fmt.Sprintf("unknown descriptor %s (did you mean %s?); use one of %s or @every DURATION",
				name, sug, strings.Join(descriptors, ", "))
		}
		return errors.New(msg)
	}
	if len(args) > 0 {
		return fmt.Errorf("%s takes nothing after it; remove %q", name, strings.Join(args, " "))
	}
	sched, err := cron.ParseStandard(name)
	if err != nil {
		return fmt.Errorf("parse descriptor %s: %w", name, err)
	}
	spec, ok := sched.(*cron.SpecSchedule)
	if !ok {
		return fmt.Errorf("parse descriptor %s: unexpected schedule type %T", name, sched)
	}
	spec.Location = time.UTC // Next works on wall-clock time written as UTC
	s.cron = spec
	return nil
}

// parseEvery parses the arguments of "@every".
func (s *Schedule) parseEvery(args []string, anchor time.Time) error {
	switch len(args) {
	case 0:
		return errors.New(`@every needs an interval, such as "@every 1h30m"`)
	case 1:
	default:
		return fmt.Errorf("@every takes one duration without spaces, such as %q, not %q",
			"@every 1h30m", strings.Join(args, " "))
	}
	d, err := time.ParseDuration(args[0])
	if err != nil {
		return fmt.Errorf("%q is not a duration; write it with the units h, m and s, such as 90s, 15m, 1h30m, or 24h for a day", args[0])
	}
	if d <= 0 {
		return fmt.Errorf("the interval must be positive, not %s", args[0])
	}
	if d < MinEvery {
		return fmt.Errorf("the interval %s is shorter than the minimum of %s", args[0], MinEvery)
	}
	if anchor.IsZero() {
		anchor = time.Unix(0, 0)
	}
	s.every, s.anchor = d, anchor
	return nil
}

// String returns the expression the schedule was parsed from, without surrounding space.
func (s *Schedule) String() string { return s.expr }

// Next returns the first tick strictly after t, in the schedule's location.
//
// A cron tick is a whole minute whose wall-clock time in the location matches the expression,
// which is how robfig/cron treats daylight saving: a wall-clock time skipped when clocks go
// forward does not fire that day (in Europe/Berlin, "30 2 * * *" skips the last Sunday of
// March), and one repeated when clocks go back fires at both instants. Unlike robfig's own
// Next, this holds in zones whose clocks move by 30 minutes (Australia/Lord_Howe) or that sit
// a quarter hour off the hour (Pacific/Chatham), where robfig skips ticks and can even return
// a time before t.
//
// "@every" ticks before the anchor do not exist, so for t before the anchor Next returns the
// anchor.
func (s *Schedule) Next(t time.Time) time.Time {
	if s.cron == nil {
		return s.nextEvery(t).In(s.loc)
	}
	// Within a span of constant UTC offset, wall-clock time is instant plus offset, so the
	// search runs on wall-clock time written as UTC, where robfig is exact; a match at or after
	// the span's end is no match, and the search moves on to the next span.
	x, inclusive := t, false
	for range maxSpans {
		local := x.In(s.loc)
		_, offset := local.Zone()
		_, end := local.ZoneBounds()
		wall := time.Date(local.Year(), local.Month(), local.Day(), local.Hour(), local.Minute(),
			local.Second(), local.Nanosecond(), time.UTC)
		if inclusive {
			wall = wall.Add(-time.Nanosecond)
		}
		match := s.nextWall(wall)
		if match.IsZero() {
			return time.Time{}
		}
		tick := match.Add(-time.Duration(offset) * time.Second)
		if end.IsZero() || tick.Before(end) {
			return tick.In(s.loc)
		}
		x, inclusive = end, true
	}
	return time.Time{}
}

// maxSpans bounds the spans of constant UTC offset Next looks through. Daylight saving makes
// two a year, and "0 0 29 2 *" can wait eight years for a 29 February (2096 to 2104).
const maxSpans = 100

// nextWall returns the first wall-clock minute after wall that the cron expression matches,
// with wall-clock times written as UTC.
func (s *Schedule) nextWall(wall time.Time) time.Time {
	wall = s.skipToCandidate(wall)
	// robfig gives up and returns the zero time after searching five years; Parse rejects
	// expressions that never fire, so the only reason is a rare date such as 29 February.
	for range 3 {
		if n := s.cron.Next(wall); !n.IsZero() {
			return n
		}
		wall = time.Date(wall.Year()+5, time.January, 1, 0, 0, 0, 0, time.UTC).Add(-time.Second)
	}
	return time.Time{}
}

// skipToCandidate returns a wall-clock time u >= wall, written as UTC, with no tick in
// (wall, u]. robfig's Next steps a second, then a minute, at a time, so starting it from u
// instead of wall makes counting a backlog of an hourly schedule about ten times faster.
func (s *Schedule) skipToCandidate(wall time.Time) time.Time {
	// Ticks fall on whole minutes, so the rest of the minute holds none: move to its last
	// second, unless wall is in it already.
	u := wall
	if sec := u.Second(); sec < 59 {
		u = u.Add(time.Duration(59-sec)*time.Second - time.Duration(u.Nanosecond()))
	}
	// Then to the last second before the next minute of this hour the expression allows, or
	// to the end of the hour when it allows none.
	first := u.Minute() + 1 // the minute robfig would look at first
	if first > 59 {
		return u
	}
	const minutes = 1<<60 - 1
	next := 60
	if rest := (s.cron.Minute & minutes) >> first << first; rest != 0 {
		next = bits.TrailingZeros64(rest)
	}
	return u.Add(time.Duration(next-first) * time.Minute)
}

// nextEvery is Next for "@every" schedules.
func (s *Schedule) nextEvery(t time.Time) time.Time {
	if t.Before(s.anchor) {
		return s.anchor
	}
	return t.Add(s.every - s.sinceTick(t))
}

// sinceTick returns how long after the last "@every" tick at or before t the instant t is,
// which is (t - anchor) mod every, for t at or after the anchor.
func (s *Schedule) sinceTick(t time.Time) time.Duration {
	diff := t.Sub(s.anchor)
	if s.anchor.Add(diff).Equal(t) {
		return diff % s.every
	}
	// t.Sub saturates beyond 292 years, which "@every 1s" anchored in 1700 and asked about
	// today would reach; compute exactly instead.
	n := big.NewInt(t.Unix() - s.anchor.Unix())
	n.Mul(n, big.NewInt(int64(time.Second)))
	n.Add(n, big.NewInt(int64(t.Nanosecond()-s.anchor.Nanosecond())))
	n.Mod(n, big.NewInt(int64(s.every)))
	return time.Duration(n.Int64())
}

// atOrAfter returns the first tick at or after t.
func (s *Schedule) atOrAfter(t time.Time) time.Time {
	return s.Next(t.Add(-time.Nanosecond))
}

// LastAtOrBefore returns the last tick in [floor, t], and false if there is none: the start of
// the interval under way at t, when it starts at or after floor.
//
// Cron ticks can only be found forwards, so the search steps forwards through ever larger
// windows ending at t; floor (a start date, say) bounds it. The work is a small multiple of
// the ticks in the last window, whatever the gap between ticks.
func (s *Schedule) LastAtOrBefore(t, floor time.Time) (time.Time, bool) {
	if t.Before(floor) {
		return time.Time{}, false
	}
	if s.cron == nil {
		if t.Before(s.anchor) {
			return time.Time{}, false
		}
		tick := t.Add(-s.sinceTick(t)).In(s.loc)
		return tick, !tick.Before(floor)
	}
	// robfig cannot step backwards, so step forwards through ever larger windows ending at t
	// until one holds a tick; the window grows by doubling.
	const maxWindow = 200 * 365 * 24 * time.Hour
	for w := time.Hour; ; w *= 2 {
		lo := t.Add(-w)
		if w > maxWindow || lo.Before(floor) {
			lo = floor
		}
		var last time.Time
		found := false
		for tick := s.atOrAfter(lo); !tick.IsZero() && !tick.After(t); tick = s.Next(tick) {
			last, found = tick, true
		}
		if found || lo.Equal(floor) {
			return last, found
		}
	}
}

// Intervals yields, in order, the data intervals whose Start is the first tick at or after
// from, then each following one. The sequence is infinite; the caller stops it.
func (s *Schedule) Intervals(from time.Time) iter.Seq[Interval] {
	return func(yield func(Interval) bool) {
		start := s.atOrAfter(from)
		for !start.IsZero() {
			end := s.Next(start)
			if !end.After(start) {
				// A schedule that cannot move forward ends the sequence rather than repeat
				// an interval forever; Parse should make this unreachable.
				return
			}
			if !yield(Interval{Start: start, End: end}) {
				return
			}
			start = end
		}
	}
}
