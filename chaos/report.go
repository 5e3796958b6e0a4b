package chaos

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"
)

// Result is what one scenario found over all its repetitions.
type Result struct {
	Scenario    string `json:"scenario"`
	Title       string `json:"title"`
	Repetitions int    `json:"repetitions"`
	Faults      int    `json:"faults"` // faults injected in all

	Counts

	// Recovery is the longest time, from a fault, until an instance led again: what the
	// scenario cost in leadership. Zero when not measured.
	Recovery Duration `json:"max_recovery"`
	Duration Duration `json:"duration"`

	// Problems lists every violation found; Notes what else is worth knowing (fencing
	// evidence, failed faults).
	Problems []string `json:"problems,omitempty"`
	Notes    []string `json:"notes,omitempty"`
	Pass     bool     `json:"pass"`
}

// Duration is a time.Duration that encodes as a string such as "1.5s".
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).Round(time.Millisecond).String())
}

// Report is the outcome of a chaos run: every scenario with its counts.
type Report struct {
	Mode      string    `json:"mode"` // "short" or "long"
	StartedAt time.Time `json:"started_at"`
	Duration  Duration  `json:"duration"`
	Dir       string    `json:"dir,omitempty"` // where logs and ledgers are, when kept
	Results   []*Result `json:"scenarios"`
	Pass      bool      `json:"pass"`
}

// Finish sets the report's totals.
func (r *Report) Finish() {
	r.Duration = Duration(time.Since(r.StartedAt))
	r.Pass = len(r.Results) > 0
	for _, res := range r.Results {
		r.Pass = r.Pass && res.Pass
	}
}

// Markdown renders the report as a table, one scenario a row, followed by every problem.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Chaos report (%s, %s, %s)\n\n", r.Mode, r.StartedAt.UTC().Format(time.RFC3339), time.Duration(r.Duration).Round(time.Second))
	b.WriteString("| scenario | repetitions | faults | runs | task instances | tries | ledger starts | duplicates | losses | max recovery | pass |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, res := range r.Results {
		pass := "yes"
		if !res.Pass {
			pass = "**NO**"
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %d | %d | %d | %s | %s |\n",
			res.Scenario, res.Repetitions, res.Faults, res.Runs, res.TaskInstances, res.Tries,
			res.LedgerStarts, res.Duplicates, res.Losses, time.Duration(res.Recovery).Round(100*time.Millisecond), pass)
	}
	for _, res := range r.Results {
		if len(res.Problems) == 0 && len(res.Notes) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n%s (%s):\n", res.Scenario, res.Title)
		for _, p := range res.Problems {
			fmt.Fprintf(&b, "- PROBLEM: %s\n", p)
		}
		for _, n := range res.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	if r.Dir != "" {
		fmt.Fprintf(&b, "\nLogs and ledgers: %s\n", r.Dir)
	}
	return b.String()
}

// WriteJSON writes the report to path, indented.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
