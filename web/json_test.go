package web

import (
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestJSONArray: an array written element by element reads byte for byte as writeJSON writes
// the whole slice.
func TestJSONArray(t *testing.T) {
	type item struct {
		Name  string            `json:"name"`
		Tags  []string          `json:"tags"`
		Attrs map[string]int    `json:"attrs,omitempty"`
		Next  *item             `json:"next,omitempty"`
		Extra map[string]string `json:"extra"`
	}
	tests := map[string][]item{
		"empty": {},
		"one":   {{Name: "a", Tags: []string{}}},
		"nested": {
			{Name: "a<b>&c", Tags: []string{"x", "y"}, Attrs: map[string]int{"n": 1, "m": 2}},
			{Name: "b", Next: &item{Name: "c", Tags: []string{"z"}}, Extra: map[string]string{}},
			{Name: "d"},
		},
	}
	for name, items := range tests {
		t.Run(name, func(t *testing.T) {
			want := httptest.NewRecorder()
			writeJSON(want, 200, items)
			got := httptest.NewRecorder()
			a := newJSONArray(got)
			for _, it := range items {
				a.add(it)
			}
			a.close()
			if diff := cmp.Diff(want.Body.String(), got.Body.String()); diff != "" {
				t.Errorf("body (-writeJSON +jsonArray):\n%s", diff)
			}
			if got.Code != 200 || got.Header().Get("Content-Type") != "application/json" {
				t.Errorf("status %d, content type %q", got.Code, got.Header().Get("Content-Type"))
			}
		})
	}
}
