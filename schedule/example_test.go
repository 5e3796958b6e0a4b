package schedule_test

import (
	"fmt"
	"time"

	"github.com/dagflow/dagflow/schedule"
)

func ExampleParse() {
	loc, err := schedule.LoadLocation("Europe/Berlin")
	if err != nil {
		fmt.Println(err)
		return
	}
	s, err := schedule.Parse("0 2 * * MON-FRI", loc, time.Time{})
	if err != nil {
		fmt.Println(err)
		return
	}
	// Friday afternoon: the next run is on Monday.
	fmt.Println(s.Next(time.Date(2026, 1, 2, 15, 0, 0, 0, loc)))

	_, err = schedule.Parse("0 25 * * *", loc, time.Time{})
	fmt.Println(err)
	// Output:
	// 2026-01-05 02:00:00 +0100 CET
	// "0 25 * * *": hour 25 is out of range (0-23)
}

func ExampleSchedule_Intervals() {
	start, _ := schedule.ParseDate("2026-01-01T06:00:00", time.UTC)
	s, _ := schedule.Parse("@every 8h", time.UTC, start)
	for iv := range s.Intervals(start) {
		if iv.Start.Day() > 1 {
			break
		}
		fmt.Printf("logical date %s, due at %s\n", iv.Start.Format("Jan 2 15:04"), iv.End.Format("Jan 2 15:04"))
	}
	// Output:
	// logical date Jan 1 06:00, due at Jan 1 14:00
	// logical date Jan 1 14:00, due at Jan 1 22:00
	// logical date Jan 1 22:00, due at Jan 2 06:00
}

func ExampleSchedule_Catchup() {
	s, _ := schedule.Parse("@daily", time.UTC, time.Time{})
	start, _ := schedule.ParseDate("2026-01-01", time.UTC)
	now := time.Date(2026, 1, 10, 9, 30, 0, 0, time.UTC)

	for _, policy := range []string{schedule.CatchupAll, schedule.CatchupLatest, schedule.CatchupNone} {
		b, err := s.Catchup(policy, start, time.Time{}, now)
		if err != nil {
			fmt.Println(err)
			return
		}
		if b.Count == 0 {
			fmt.Printf("%-6s no runs\n", policy)
			continue
		}
		fmt.Printf("%-6s %d run(s), logical dates %s to %s\n", policy, b.Count,
			b.First.Start.Format(time.DateOnly), b.Last.Start.Format(time.DateOnly))
	}
	// Output:
	// all    9 run(s), logical dates 2026-01-01 to 2026-01-09
	// latest 1 run(s), logical dates 2026-01-09 to 2026-01-09
	// none   no runs
}
