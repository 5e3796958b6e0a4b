package main

import (
	"encoding/json"
	"os"
	"strings"
	"time"
	"unicode/utf8"
)

// printJSON prints v as indented JSON on standard output.
func (m *Meta) printJSON(v any) {
	b, _ := json.MarshalIndent(v, "", "  ")
	m.UI.Output(string(b))
}

// table lays rows out in columns under upper-case headers, two spaces apart, as nomad job
// status does. With color, the cells of the column named STATE are colored by state.
func (m *Meta) table(headers []string, rows [][]string) string {
	widths := make([]int, len(headers))
	for i, h := range headers {
		widths[i] = utf8.RuneCountInString(h)
	}
	for _, row := range rows {
		for i, cell := range row {
			widths[i] = max(widths[i], utf8.RuneCountInString(cell))
		}
	}
	color := m.color(os.Stdout)
	var b strings.Builder
	line := func(cells []string, colorize bool) {
		for i, cell := range cells {
			last := i == len(cells)-1
			pad := ""
			if !last {
				pad = strings.Repeat(" ", widths[i]-utf8.RuneCountInString(cell)+2)
			}
			if colorize && color && headers[i] == "STATE" {
				cell = stateColor(cell)
			}
			b.WriteString(cell + pad)
		}
		b.WriteString("\n")
	}
	line(headers, false)
	for _, row := range rows {
		line(row, true)
	}
	return strings.TrimRight(b.String(), "\n")
}

// kv lays out "Key = Value" lines with the = signs aligned, as nomad alloc status does.
func kv(pairs [][2]string) string {
	w := 0
	for _, p := range pairs {
		w = max(w, utf8.RuneCountInString(p[0]))
	}
	lines := make([]string, len(pairs))
	for i, p := range pairs {
		lines[i] = p[0] + strings.Repeat(" ", w-utf8.RuneCountInString(p[0])) + " = " + p[1]
	}
	return strings.Join(lines, "\n")
}

// ANSI colors of run and task states.
const (
	ansiReset  = "\x1b[0m"
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiBlue   = "\x1b[34m"
)

func stateColor(state string) string {
	c := ""
	switch state {
	case "success":
		c = ansiGreen
	case "failed", "upstream_failed":
		c = ansiRed
	case "up_for_retry":
		c = ansiYellow
	case "running":
		c = ansiBlue
	}
	if c == "" {
		return state
	}
	return c + state + ansiReset
}

// formatTime prints a time in UTC as RFC 3339, or "-" for none.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// formatDuration prints how long something took from start to end, or "-" while it is not
// over.
func formatDuration(start, end time.Time) string {
	if start.IsZero() || end.IsZero() {
		return "-"
	}
	d := end.Sub(start)
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}

// orDash returns s, or "-" when it is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
