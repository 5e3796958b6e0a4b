package rules

import (
	"errors"
	"regexp"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// runIDChars is what a run ID may consist of (see RunID).
var runIDChars = regexp.MustCompile(`^[A-Za-z0-9_:.-]+$`)

func TestRunID(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		typ  RunType
		date time.Time
		want string
	}{
		"scheduled": {
			typ:  RunScheduled,
			date: time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC),
			want: "scheduled__2026-11-22T02:00:00Z",
		},
		"backfill": {
			typ:  RunBackfill,
			date: time.Date(2026, 11, 20, 2, 0, 0, 0, time.UTC),
			want: "backfill__2026-11-20T02:00:00Z",
		},
		"manual, milliseconds": {
			typ:  RunManual,
			date: time.Date(2026, 11, 22, 9, 13, 27, 481_000_000, time.UTC),
			want: "manual__2026-11-22T09:13:27.481Z",
		},
		"manual, nanoseconds": {
			typ:  RunManual,
			date: time.Date(2026, 11, 22, 9, 13, 27, 481_000_007, time.UTC),
			want: "manual__2026-11-22T09:13:27.481000007Z",
		},
		"manual, whole second": {
			typ:  RunManual,
			date: time.Date(2026, 11, 22, 9, 13, 27, 0, time.UTC),
			want: "manual__2026-11-22T09:13:27Z",
		},
		"local time is written in UTC": {
			typ:  RunScheduled,
			date: time.Date(2026, 11, 22, 2, 0, 0, 0, berlin),
			want: "scheduled__2026-11-22T01:00:00Z",
		},
		"fixed zone is written in UTC": {
			typ:  RunScheduled,
			date: time.Date(2026, 7, 1, 0, 0, 0, 0, time.FixedZone("", -7*3600)),
			want: "scheduled__2026-07-01T07:00:00Z",
		},
		"year 0": {
			typ:  RunBackfill,
			date: time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
			want: "backfill__0000-01-01T00:00:00Z",
		},
		"year 9999": {
			typ:  RunScheduled,
			date: time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC),
			want: "scheduled__9999-12-31T23:59:59.999999999Z",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := RunID(tc.typ, tc.date)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("RunID mismatch (-want +got):\n%s", diff)
			}
			if !runIDChars.MatchString(got) {
				t.Errorf("RunID = %q, which has characters outside %v", got, runIDChars)
			}
			typ, date, err := ParseRunID(got)
			if err != nil {
				t.Fatalf("ParseRunID(%q): %v", got, err)
			}
			if typ != tc.typ || !date.Equal(tc.date) || date.Location() != time.UTC {
				t.Errorf("ParseRunID(%q) = %q, %v; want %q, %v in UTC", got, typ, date, tc.typ, tc.date)
			}
		})
	}
}

func TestRunIDIgnoresMonotonicClock(t *testing.T) {
	now := time.Now() // carries a monotonic clock reading
	if a, b := RunID(RunManual, now), RunID(RunManual, now.Round(0)); a != b {
		t.Errorf("RunID with monotonic reading = %q, without = %q", a, b)
	}
}

func TestParseRunID(t *testing.T) {
	tests := map[string]struct {
		id       string
		wantType RunType
		wantDate time.Time
		wantErr  string
	}{
		"scheduled": {
			id:       "scheduled__2026-11-22T02:00:00Z",
			wantType: RunScheduled,
			wantDate: time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC),
		},
		"manual with fraction": {
			id:       "manual__2026-11-22T09:13:27.481Z",
			wantType: RunManual,
			wantDate: time.Date(2026, 11, 22, 9, 13, 27, 481_000_000, time.UTC),
		},
		"backfill": {
			id:       "backfill__2026-11-20T02:00:00Z",
			wantType: RunBackfill,
			wantDate: time.Date(2026, 11, 20, 2, 0, 0, 0, time.UTC),
		},
		"asset triggered": {
			id:       "asset_triggered__2026-11-22T02:00:00.5Z",
			wantType: RunAssetTriggered,
			wantDate: time.Date(2026, 11, 22, 2, 0, 0, 500_000_000, time.UTC),
		},
		"empty": {
			id:      "",
			wantErr: `invalid run ID "": want TYPE__DATE, such as "scheduled__2026-11-22T02:00:00Z"`,
		},
		"single underscore": {
			id:      "scheduled_2026-11-22T02:00:00Z",
			wantErr: `invalid run ID "scheduled_2026-11-22T02:00:00Z": want TYPE__DATE, such as "scheduled__2026-11-22T02:00:00Z"`,
		},
		"unknown type": {
			id:      "daily__2026-11-22T02:00:00Z",
			wantErr: `invalid run ID "daily__2026-11-22T02:00:00Z": unknown run type "daily"; want scheduled, manual, backfill or asset_triggered`,
		},
		"upper case type": {
			id:      "SCHEDULED__2026-11-22T02:00:00Z",
			wantErr: `invalid run ID "SCHEDULED__2026-11-22T02:00:00Z": unknown run type "SCHEDULED"; want scheduled, manual, backfill or asset_triggered`,
		},
		"no date": {
			id:      "scheduled__",
			wantErr: `invalid run ID "scheduled__": "" is not an RFC 3339 date such as "2026-11-22T02:00:00Z"`,
		},
		"date without time": {
			id:      "scheduled__2026-11-22",
			wantErr: `invalid run ID "scheduled__2026-11-22": "2026-11-22" is not an RFC 3339 date such as "2026-11-22T02:00:00Z"`,
		},
		"extra separator": {
			id:      "scheduled____2026-11-22T02:00:00Z",
			wantErr: `invalid run ID "scheduled____2026-11-22T02:00:00Z": "__2026-11-22T02:00:00Z" is not an RFC 3339 date such as "2026-11-22T02:00:00Z"`,
		},
		"Airflow's offset": {
			id:      "scheduled__2026-11-22T02:00:00+00:00",
			wantErr: `invalid run ID "scheduled__2026-11-22T02:00:00+00:00": the date is not written in UTC with "Z" and without trailing zeros; the ID of that run is "scheduled__2026-11-22T02:00:00Z"`,
		},
		"other offset": {
			id:      "scheduled__2026-11-22T03:00:00+01:00",
			wantErr: `invalid run ID "scheduled__2026-11-22T03:00:00+01:00": the date is not written in UTC with "Z" and without trailing zeros; the ID of that run is "scheduled__2026-11-22T02:00:00Z"`,
		},
		"trailing zeros": {
			id:      "manual__2026-11-22T09:13:27.4810Z",
			wantErr: `invalid run ID "manual__2026-11-22T09:13:27.4810Z": the date is not written in UTC with "Z" and without trailing zeros; the ID of that run is "manual__2026-11-22T09:13:27.481Z"`,
		},
		"zero fraction": {
			id:      "manual__2026-11-22T09:13:27.000Z",
			wantErr: `invalid run ID "manual__2026-11-22T09:13:27.000Z": the date is not written in UTC with "Z" and without trailing zeros; the ID of that run is "manual__2026-11-22T09:13:27Z"`,
		},
		"lower case z": {
			id:      "scheduled__2026-11-22t02:00:00z",
			wantErr: `invalid run ID "scheduled__2026-11-22t02:00:00z": "2026-11-22t02:00:00z" is not an RFC 3339 date such as "2026-11-22T02:00:00Z"`,
		},
		"past year 9999": {
			id:      "scheduled__9999-12-31T23:30:00-01:00",
			wantErr: `invalid run ID "scheduled__9999-12-31T23:30:00-01:00": the date lies outside the years 0 to 9999 in UTC`,
		},
		"before year 0": {
			id:      "scheduled__0000-01-01T00:30:00+01:00",
			wantErr: `invalid run ID "scheduled__0000-01-01T00:30:00+01:00": the date lies outside the years 0 to 9999 in UTC`,
		},
		"trailing space": {
			id:      "scheduled__2026-11-22T02:00:00Z ",
			wantErr: `invalid run ID "scheduled__2026-11-22T02:00:00Z ": "2026-11-22T02:00:00Z " is not an RFC 3339 date such as "2026-11-22T02:00:00Z"`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			typ, date, err := ParseRunID(tc.id)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseRunID(%q) = %q, %v; want error %q", tc.id, typ, date, tc.wantErr)
				}
				if diff := cmp.Diff(tc.wantErr, err.Error()); diff != "" {
					t.Errorf("ParseRunID(%q) error mismatch (-want +got):\n%s", tc.id, diff)
				}
				if !errors.Is(err, ErrInvalidRunID) {
					t.Errorf("ParseRunID(%q) error %v does not wrap ErrInvalidRunID", tc.id, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseRunID(%q): %v", tc.id, err)
			}
			if diff := cmp.Diff(tc.wantType, typ); diff != "" {
				t.Errorf("ParseRunID(%q) type mismatch (-want +got):\n%s", tc.id, diff)
			}
			if !date.Equal(tc.wantDate) || date.Location() != time.UTC {
				t.Errorf("ParseRunID(%q) date = %v, want %v in UTC", tc.id, date, tc.wantDate)
			}
		})
	}
}

func TestRunTypeValid(t *testing.T) {
	want := map[RunType]bool{
		RunScheduled:      true,
		RunManual:         true,
		RunBackfill:       true,
		"":                false,
		"Scheduled":       false,
		RunAssetTriggered: true,
		"asset":           false,
	}
	got := map[RunType]bool{}
	for typ := range want {
		got[typ] = typ.Valid()
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Valid() mismatch (-want +got):\n%s", diff)
	}
}
