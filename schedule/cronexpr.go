package schedule

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// cronField describes one field of a five-field cron expression, for error messages that name
// the field and its valid values.
type cronField struct {
	name     string
	min, max int
	names    []string // names[i] is value min+i, such as "SUN" for day of week 0; nil if none
	nameHint string   // how names are mentioned in range errors, such as "SUN-SAT"
}

var cronFields = []cronField{
	{name: "minute", min: 0, max: 59},
	{name: "hour", min: 0, max: 23},
	{name: "day of month", min: 1, max: 31},
	{
		name: "month", min: 1, max: 12, nameHint: "JAN-DEC",
		names: []string{"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"},
	},
	{
		name: "day of week", min: 0, max: 6, nameHint: "SUN-SAT",
		names: []string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"},
	},
}

// parseCron parses a five-field cron expression. It checks the fields itself before handing
// them to robfig/cron, because robfig's errors ("end of range (25) above maximum (23): 25")
// do not tell a DAG author which field is wrong or what to write instead, and because robfig
// silently accepts a few things that make no sense in a schedule ("1,,2", "*-5").
func parseCron(expr string) (*cron.SpecSchedule, error) {
	if strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ=") {
		// robfig would honour (or, with no space after it, panic on) the prefix; the DAG's
		// timezone is the one place a schedule's zone is set.
		return nil, errors.New("time zone prefixes are not supported; set the DAG's timezone instead")
	}
	fields := strings.Fields(expr)
	if len(fields) != len(cronFields) {
		msg := fmt.Sprintf("has %d fields, but a cron expression has 5: minute, hour, day of month, month and day of week", len(fields))
		if len(fields) == 6 {
			msg += " (a seconds field is not supported)"
		}
		return nil, errors.New(msg)
	}
	for i, f := range cronFields {
		if err := f.check(fields[i]); err != nil {
			return nil, err
		}
	}
	sched, err := cron.ParseStandard(strings.Join(fields, " "))
	if err != nil {
		// The checks above should have caught everything robfig rejects; if they missed a
		// case, robfig's own words are still better than nothing.
		return nil, fmt.Errorf("invalid cron expression: %w", err)
	}
	spec, ok := sched.(*cron.SpecSchedule)
	if !ok {
		return nil, fmt.Errorf("invalid cron expression: unexpected schedule type %T", sched)
	}
	spec.Location = time.UTC // Next works on wall-clock time written as UTC
	if err := checkReachable(spec); err != nil {
		return nil, err
	}
	return spec, nil
}

// check reports whether text is a valid value for the field: a comma-separated list of items,
// each "*", "?", a value or a range "A-B", optionally followed by a step "/N".
func (f cronField) check(text string) error {
	for item := range strings.SplitSeq(text, ",") {
		if item == "" {
			return fmt.Errorf("%s %q has an empty item in its comma-separated list", f.name, text)
		}
		rng, step, hasStep := strings.Cut(item, "/")
		if hasStep {
			if strings.Contains(step, "/") {
				return fmt.Errorf("%s %q has more than one step (/)", f.name, item)
			}
			n, err := strconv.Atoi(step)
			if err != nil || n < 1 {
				return fmt.Errorf("step %q in %s %q must be a whole number of at least 1", step, f.name, item)
			}
		}
		if rng == "*" || rng == "?" {
			continue
		}
		lo, hi, isRange := strings.Cut(rng, "-")
		if isRange && strings.Contains(hi, "-") {
			return fmt.Errorf("%s %q has more than one range (-); negative numbers are not allowed", f.name, item)
		}
		if lo == "" {
			return fmt.Errorf("%s %q is missing the start of its range; negative numbers are not allowed", f.name, item)
		}
		loV, err := f.value(lo)
		if err != nil {
			return err
		}
		if !isRange {
			continue
		}
		if hi == "" {
			return fmt.Errorf("%s %q is missing the end of its range", f.name, item)
		}
		hiV, err := f.value(hi)
		if err != nil {
			return err
		}
		if loV > hiV {
			return fmt.Errorf("%s range %q starts after it ends; ranges cannot wrap around, so list both parts, such as %s",
				f.name, rng, f.wrapExample())
		}
	}
	return nil
}

// value parses one value of the field: a number or, for months and days of the week, a name.
func (f cronField) value(s string) (int, error) {
	if s == "*" || s == "?" {
		return 0, fmt.Errorf("%s %q cannot be part of a range; use it alone or write a range such as %d-%d",
			f.name, s, f.min, f.max)
	}
	for i, name := range f.names {
		if strings.EqualFold(s, name) {
			return f.min + i, nil
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return 0, fmt.Errorf("%s %s is out of range (%s)", f.name, s, f.bounds())
		}
		if f.names == nil {
			return 0, fmt.Errorf("%s %q is not a number", f.name, s)
		}
		msg := fmt.Sprintf("%s %q is not a number or a name (%s)", f.name, s, f.nameHint)
		if sug := suggest(s, f.names, typoDistance(len(s))); sug != "" {
			msg += fmt.Sprintf("; did you mean %s?", sug)
		}
		return 0, errors.New(msg)
	}
	if n < f.min || n > f.max {
		msg := fmt.Sprintf("%s %d is out of range (%s)", f.name, n, f.bounds())
		if f.name == "day of week" && n == 7 {
			// Some crons accept 7 for Sunday; robfig does not.
			msg += "; write Sunday as 0 or SUN"
		}
		return 0, errors.New(msg)
	}
	return n, nil
}

// bounds describes the field's valid values, such as "0-6 or SUN-SAT".
func (f cronField) bounds() string {
	if f.nameHint != "" {
		return fmt.Sprintf("%d-%d or %s", f.min, f.max, f.nameHint)
	}
	return fmt.Sprintf("%d-%d", f.min, f.max)
}

// wrapExample shows how to write a range that wraps past the field's maximum.
func (f cronField) wrapExample() string {
	switch f.name {
	case "hour":
		return "22-23,0-2"
	case "day of week":
		return "FRI-SAT,SUN-MON"
	case "month":
		return "NOV-DEC,JAN-FEB"
	}
	return fmt.Sprintf("%d-%d,%d-%d", f.max-1, f.max, f.min, f.min+1)
}

// starBit is the bit robfig/cron sets in a field written as "*" or "?"; robfig then requires
// both the day of month and the day of week to match, instead of either.
const starBit = 1 << 63

// daysIn is the most days each month can have, February counting leap years.
var daysIn = [13]int{0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}

// checkReachable rejects expressions that can never fire, such as "0 0 30 2 *". robfig would
// accept them and Next would return the zero time, which a scheduler would read as a tick in
// year 1.
func checkReachable(spec *cron.SpecSchedule) error {
	// When both day fields are restricted, either may match; the day of week always matches
	// some day. When the day of month is "*", any selected weekday occurs in every month.
	if spec.Dow&starBit == 0 || spec.Dom&starBit != 0 {
		return nil
	}
	minDay := 0
	for d := 1; d <= 31; d++ {
		if spec.Dom&(1<<d) != 0 {
			minDay = d
			break
		}
	}
	var months []time.Month
	for m := 1; m <= 12; m++ {
		if spec.Month&(1<<m) == 0 {
			continue
		}
		if minDay <= daysIn[m] {
			return nil
		}
		months = append(months, time.Month(m))
	}
	if len(months) == 1 {
		return fmt.Errorf("never runs, because %s has no day %d", months[0], minDay)
	}
	return fmt.Errorf("never runs, because none of the selected months has a day %d", minDay)
}
