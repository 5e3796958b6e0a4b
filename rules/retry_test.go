package rules

import (
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dagflow/dagflow/hcl/spec"
)

// task returns a task with the given retry settings.
func task(delay time.Duration, backoff bool, maxDelay time.Duration) *spec.Task {
	return &spec.Task{
		Name:                    "t",
		RetryDelay:              spec.Duration(delay),
		RetryExponentialBackoff: backoff,
		MaxRetryDelay:           spec.Duration(maxDelay),
	}
}

func TestRetryDelay(t *testing.T) {
	tests := map[string]struct {
		task *spec.Task
		next int
		want time.Duration
	}{
		"fixed, first retry":  {task: task(30*time.Second, false, 0), next: 2, want: 30 * time.Second},
		"fixed, fifth retry":  {task: task(30*time.Second, false, 0), next: 6, want: 30 * time.Second},
		"fixed, huge try":     {task: task(30*time.Second, false, 0), next: math.MaxInt, want: 30 * time.Second},
		"fixed, over a day":   {task: task(48*time.Hour, false, 0), next: 2, want: 48 * time.Hour},
		"fixed, capped":       {task: task(10*time.Minute, false, 5*time.Minute), next: 2, want: 5 * time.Minute},
		"fixed, zero":         {task: task(0, false, 0), next: 2, want: 0},
		"fixed, negative":     {task: task(-5*time.Second, false, 0), next: 2, want: 0},
		"backoff, retry 1":    {task: task(30*time.Second, true, 0), next: 2, want: 30 * time.Second},
		"backoff, retry 2":    {task: task(30*time.Second, true, 0), next: 3, want: time.Minute},
		"backoff, retry 3":    {task: task(30*time.Second, true, 0), next: 4, want: 2 * time.Minute},
		"backoff, retry 5":    {task: task(30*time.Second, true, 0), next: 6, want: 8 * time.Minute},
		"backoff, at max":     {task: task(time.Minute, true, 4*time.Minute), next: 4, want: 4 * time.Minute},
		"backoff, over max":   {task: task(30*time.Second, true, 10*time.Minute), next: 7, want: 10 * time.Minute},
		"backoff, below cap":  {task: task(time.Hour, true, 0), next: 6, want: 16 * time.Hour},
		"backoff, over cap":   {task: task(time.Hour, true, 0), next: 7, want: DefaultMaxRetryDelay},
		"backoff, long base":  {task: task(48*time.Hour, true, 0), next: 3, want: 48 * time.Hour},
		"backoff, 62 doubles": {task: task(time.Nanosecond, true, 0), next: 64, want: DefaultMaxRetryDelay},
		"backoff, 63 doubles": {task: task(time.Nanosecond, true, 0), next: 65, want: DefaultMaxRetryDelay},
		"backoff, overflow":   {task: task(time.Second, true, 0), next: 36, want: DefaultMaxRetryDelay},
		"backoff, max int":    {task: task(time.Second, true, 0), next: math.MaxInt, want: DefaultMaxRetryDelay},
		"backoff, huge max":   {task: task(time.Second, true, time.Duration(math.MaxInt64)), next: 100, want: time.Duration(math.MaxInt64)},
		"backoff, zero":       {task: task(0, true, 0), next: 10, want: 0},
		"backoff, negative":   {task: task(-time.Second, true, 0), next: 10, want: 0},
		"next 1 counts as 2":  {task: task(30*time.Second, true, 0), next: 1, want: 30 * time.Second},
		"next 0 counts as 2":  {task: task(30*time.Second, true, 0), next: 0, want: 30 * time.Second},
		"min int counts as 2": {task: task(30*time.Second, true, 0), next: math.MinInt, want: 30 * time.Second},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := RetryDelay(tc.task, tc.next)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("RetryDelay(%d) mismatch (-want +got):\n%s", tc.next, diff)
			}
		})
	}
}

// TestRetryDelayGrows checks that the delay never shrinks from one retry to the next, never
// goes negative and never passes its cap, across the whole range of shifts.
func TestRetryDelayGrows(t *testing.T) {
	tests := map[string]struct {
		task *spec.Task
		cap  time.Duration
	}{
		"1ns, default cap": {task: task(time.Nanosecond, true, 0), cap: DefaultMaxRetryDelay},
		"7s, default cap":  {task: task(7*time.Second, true, 0), cap: DefaultMaxRetryDelay},
		"30s, 10m cap":     {task: task(30*time.Second, true, 10*time.Minute), cap: 10 * time.Minute},
		"3ns, max cap":     {task: task(3, true, time.Duration(math.MaxInt64)), cap: time.Duration(math.MaxInt64)},
		"fixed 5m":         {task: task(5*time.Minute, false, 0), cap: 5 * time.Minute},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			prev := time.Duration(0)
			for next := 2; next < 200; next++ {
				d := RetryDelay(tc.task, next)
				if d < prev || d > tc.cap {
					t.Fatalf("RetryDelay(%d) = %v after %v; want it between the previous delay and %v", next, d, prev, tc.cap)
				}
				prev = d
			}
			if prev != tc.cap {
				t.Errorf("RetryDelay(199) = %v, want the cap %v", prev, tc.cap)
			}
		})
	}
}

func TestCanRetry(t *testing.T) {
	tests := map[string]struct {
		retries, try int
		want         bool
	}{
		"no retries":               {retries: 0, try: 1, want: false},
		"first of two retries":     {retries: 2, try: 1, want: true},
		"second of two retries":    {retries: 2, try: 2, want: true},
		"two retries used":         {retries: 2, try: 3, want: false},
		"past the last try":        {retries: 2, try: 10, want: false},
		"try 0 counts as 1":        {retries: 1, try: 0, want: true},
		"negative try counts as 1": {retries: 0, try: -5, want: false},
		"negative retries":         {retries: -1, try: 1, want: false},
		"max retries, max try":     {retries: math.MaxInt, try: math.MaxInt, want: true},
		"max retries, min int try": {retries: math.MaxInt, try: math.MinInt, want: true},
		"one retry, min int try":   {retries: 0, try: math.MinInt, want: false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := CanRetry(&spec.Task{Retries: tc.retries}, tc.try)
			if got != tc.want {
				t.Errorf("CanRetry(retries=%d, try=%d) = %v, want %v", tc.retries, tc.try, got, tc.want)
			}
		})
	}
}
