package schedule

//go:generate go run zones_gen.go

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Date layouts ParseDate accepts, besides RFC 3339.
const (
	dateLayout     = "2006-01-02"
	dateTimeLayout = "2006-01-02T15:04:05"
)

// dateForms names the forms ParseDate accepts, for its errors.
const dateForms = `use 2026-01-02 (midnight), 2026-01-02T15:04:05 (both in the DAG's timezone) or RFC 3339 with an offset, such as 2026-01-02T15:04:05Z or 2026-01-02T15:04:05+01:00`

// ParseDate parses a start_date or end_date value in one of three forms:
//
//   - "2026-01-02": midnight at the start of that day in loc;
//   - "2026-01-02T15:04:05", optionally with fractional seconds: that wall-clock time in loc;
//   - RFC 3339 with an offset, such as "2026-01-02T15:04:05Z" or "2026-01-02T15:04:05+01:00":
//     that instant, whatever loc is.
//
// A nil loc means UTC. A wall-clock time that does not exist in loc, because clocks skip it
// when daylight saving starts, is normalized as time.Date does. Errors name the accepted forms.
func ParseDate(s string, loc *time.Location) (time.Time, error) {
	if loc == nil {
		loc = time.UTC
	}
	text := strings.TrimSpace(s)
	var (
		t   time.Time
		err error
	)
	switch {
	case text == "":
		return time.Time{}, fmt.Errorf("date is empty; %s", dateForms)
	case len(text) == len(dateLayout):
		t, err = time.ParseInLocation(dateLayout, text, loc)
	case hasOffset(text):
		t, err = time.Parse(time.RFC3339, text)
	default:
		t, err = time.ParseInLocation(dateTimeLayout, text, loc)
	}
	if err != nil {
		// time's errors quote layouts; only the reason, such as "month out of range", helps.
		var perr *time.ParseError
		if errors.As(err, &perr) && perr.Message != "" {
			return time.Time{}, fmt.Errorf("invalid date %q%s; %s", s, perr.Message, dateForms)
		}
		return time.Time{}, fmt.Errorf("invalid date %q; %s", s, dateForms)
	}
	return t, nil
}

// hasOffset reports whether a date-time ends in a UTC offset: "Z", "+hh:mm" or "-hh:mm" after
// the time.
func hasOffset(s string) bool {
	_, clock, ok := strings.Cut(s, "T")
	if !ok {
		return false
	}
	return strings.HasSuffix(clock, "Z") || strings.ContainsAny(clock, "+-")
}

// LoadLocation returns the time zone with the given IANA name. Unlike time.LoadLocation it
// refuses "" and "Local": a DAG's schedule must not depend on the zone of the host that happens
// to evaluate it. Names are looked up in the database embedded in the binary when the host has
// none.
//
// An unknown name is an error that suggests a close IANA name when there is one, such as
// `unknown time zone "Europe/Berln"; did you mean "Europe/Berlin"?`.
func LoadLocation(name string) (*time.Location, error) {
	if name == "" || name == "Local" {
		return nil, fmt.Errorf("time zone %q depends on the host; use an IANA name such as \"Europe/Berlin\" or \"UTC\"", name)
	}
	loc, err := time.LoadLocation(name)
	if err == nil {
		return loc, nil
	}
	if sug := suggestZone(name); sug != "" {
		return nil, fmt.Errorf("unknown time zone %q; did you mean %q?", name, sug)
	}
	return nil, fmt.Errorf("unknown time zone %q; use an IANA name such as \"Europe/Berlin\" or \"UTC\"", name)
}

// suggestZone returns the IANA name a user most likely meant by name, or "".
func suggestZone(name string) string {
	// People write "europe/berlin", "Berlin" and "New York" as often as they make typos.
	key := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(name), " ", "_"))
	if key == "" {
		return ""
	}
	for _, z := range zoneNames {
		if strings.ToLower(z) == key {
			return z
		}
	}
	if !strings.Contains(key, "/") {
		for _, z := range zoneNames {
			if i := strings.LastIndex(z, "/"); i >= 0 && strings.ToLower(z[i+1:]) == key {
				return z
			}
		}
	}
	// Zone abbreviations are short and close to each other, so only longer names get a
	// suggestion by edit distance: "PST" must not suggest "EST".
	return suggest(key, zoneNames, len(key)/4)
}
