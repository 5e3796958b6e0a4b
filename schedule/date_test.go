package schedule_test

import (
	"testing"
	"time"

	"github.com/dagflow/dagflow/schedule"
)

func TestParseDate(t *testing.T) {
	tests := []struct {
		name string
		in   string
		loc  *time.Location
		want time.Time
	}{
		{"date is midnight in the zone", "2026-01-02", berlin, at(berlin, 2026, 1, 2, 0, 0)},
		{"date and time in the zone", "2026-07-02T15:04:05", berlin, time.Date(2026, 7, 2, 15, 4, 5, 0, berlin)},
		{"fractional seconds", "2026-07-02T15:04:05.25", berlin, time.Date(2026, 7, 2, 15, 4, 5, 250e6, berlin)},
		{"RFC 3339 in UTC ignores the zone", "2026-01-02T15:04:05Z", berlin, time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)},
		{"RFC 3339 with an offset", "2026-01-02T15:04:05+05:30", berlin, time.Date(2026, 1, 2, 9, 34, 5, 0, time.UTC)},
		{"RFC 3339 with a negative offset", "2026-01-02T15:04:05-05:00", berlin, time.Date(2026, 1, 2, 20, 4, 5, 0, time.UTC)},
		{"surrounding space", " 2026-01-02 ", time.UTC, at(time.UTC, 2026, 1, 2, 0, 0)},
		{"nil location is UTC", "2026-01-02", nil, at(time.UTC, 2026, 1, 2, 0, 0)},
		{"leap day", "2028-02-29", time.UTC, at(time.UTC, 2028, 2, 29, 0, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := schedule.ParseDate(tt.in, tt.loc)
			if err != nil {
				t.Fatalf("ParseDate(%q): %v", tt.in, err)
			}
			if !got.Equal(tt.want) {
				t.Errorf("ParseDate(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseDateErrors(t *testing.T) {
	const forms = "use 2026-01-02 (midnight), 2026-01-02T15:04:05 (both in the DAG's timezone) or RFC 3339 with an offset, such as 2026-01-02T15:04:05Z or 2026-01-02T15:04:05+01:00"
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"empty", "", "date is empty; " + forms},
		{"month out of range", "2026-13-01", `invalid date "2026-13-01": month out of range; ` + forms},
		{"no such day", "2026-02-29", `invalid date "2026-02-29": day out of range; ` + forms},
		{"hour out of range", "2026-01-02T25:00:00", `invalid date "2026-01-02T25:00:00": hour out of range; ` + forms},
		{"offset out of range", "2026-01-02T15:04:05+25:00", `invalid date "2026-01-02T15:04:05+25:00": time zone offset hour out of range; ` + forms},
		{"space instead of T", "2026-01-02 15:04:05", `invalid date "2026-01-02 15:04:05"; ` + forms},
		{"no seconds", "2026-01-02T15:04", `invalid date "2026-01-02T15:04"; ` + forms},
		{"no zero padding", "2026-1-2", `invalid date "2026-1-2"; ` + forms},
		{"other order", "02.01.2026", `invalid date "02.01.2026"; ` + forms},
		{"words", "yesterday", `invalid date "yesterday"; ` + forms},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := schedule.ParseDate(tt.in, berlin)
			if err == nil {
				t.Fatalf("ParseDate(%q) = %s, want error %q", tt.in, got, tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("ParseDate(%q) error:\n got: %s\nwant: %s", tt.in, err, tt.want)
			}
		})
	}
}

func TestLoadLocation(t *testing.T) {
	tests := []struct {
		name    string
		want    string // the location's name
		wantErr string
	}{
		{name: "Europe/Berlin", want: "Europe/Berlin"},
		{name: "America/Argentina/Buenos_Aires", want: "America/Argentina/Buenos_Aires"},
		{name: "UTC", want: "UTC"},
		{name: "", wantErr: `time zone "" depends on the host; use an IANA name such as "Europe/Berlin" or "UTC"`},
		{name: "Local", wantErr: `time zone "Local" depends on the host; use an IANA name such as "Europe/Berlin" or "UTC"`},
		{name: "Europe/Berln", wantErr: `unknown time zone "Europe/Berln"; did you mean "Europe/Berlin"?`},
		{name: "europe/berlin", wantErr: `unknown time zone "europe/berlin"; did you mean "Europe/Berlin"?`},
		{name: "Berlin", wantErr: `unknown time zone "Berlin"; did you mean "Europe/Berlin"?`},
		{name: "New York", wantErr: `unknown time zone "New York"; did you mean "America/New_York"?`},
		{name: "Amerca/New_Yrok", wantErr: `unknown time zone "Amerca/New_Yrok"; did you mean "America/New_York"?`},
		{name: "PST", wantErr: `unknown time zone "PST"; use an IANA name such as "Europe/Berlin" or "UTC"`},
		{name: "Mars/Olympus_Mons", wantErr: `unknown time zone "Mars/Olympus_Mons"; use an IANA name such as "Europe/Berlin" or "UTC"`},
		{name: "../../etc/passwd", wantErr: `unknown time zone "../../etc/passwd"; use an IANA name such as "Europe/Berlin" or "UTC"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loc, err := schedule.LoadLocation(tt.name)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Errorf("LoadLocation(%q) error = %v, want %q", tt.name, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadLocation(%q): %v", tt.name, err)
			}
			if loc.String() != tt.want {
				t.Errorf("LoadLocation(%q) = %s, want %s", tt.name, loc, tt.want)
			}
		})
	}
}
