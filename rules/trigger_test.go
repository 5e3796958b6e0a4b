package rules

import (
	"slices"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dagflow/dagflow/hcl/spec"
)

// triggerScenarios are the upstream states every trigger rule is tested with.
var triggerScenarios = map[string][]State{
	"all success":           {Success, Success, Success},
	"one failed":            {Success, Failed, Success},
	"one upstream_failed":   {Success, UpstreamFailed, Success},
	"one skipped":           {Success, Skipped, Success},
	"all skipped":           {Skipped, Skipped, Skipped},
	"all failed":            {Failed, UpstreamFailed},
	"failed and skipped":    {Failed, Skipped},
	"success, rest running": {Success, Running, None},
	"failed, rest running":  {Failed, Running, UpForRetry},
	"skipped, rest running": {Skipped, Running, Queued},
	"nothing finished":      {Running, Queued, Scheduled, UpForRetry, None},
	"unknown state":         {Success, "removed"},
	"no upstream":           nil,
}

// wantDecisions holds, for every rule, the decision Airflow's TriggerRuleDep makes in each
// scenario. Mixed scenarios with tasks still running give Wait, except where the rule fires
// early: one_success on a success, one_failed on a failure, and the rules that give up at the
// first failure or skip.
var wantDecisions = map[string]map[string]Decision{
	"all_success": {
		"all success":           Run,
		"one failed":            UpstreamFail,
		"one upstream_failed":   UpstreamFail,
		"one skipped":           Skip,
		"all skipped":           Skip,
		"all failed":            UpstreamFail,
		"failed and skipped":    UpstreamFail, // a failure outweighs a skip
		"success, rest running": Wait,
		"failed, rest running":  UpstreamFail, // without waiting for the rest
		"skipped, rest running": Skip,         // without waiting for the rest
		"nothing finished":      Wait,
		"unknown state":         Wait,
		"no upstream":           Run,
	},
	"all_failed": {
		"all success":           Skip,
		"one failed":            Skip,
		"one upstream_failed":   Skip,
		"one skipped":           Skip,
		"all skipped":           Skip,
		"all failed":            Run,
		"failed and skipped":    Skip,
		"success, rest running": Skip, // without waiting for the rest
		"failed, rest running":  Wait,
		"skipped, rest running": Skip,
		"nothing finished":      Wait,
		"unknown state":         Skip,
		"no upstream":           Run,
	},
	"all_done": {
		"all success":           Run,
		"one failed":            Run,
		"one upstream_failed":   Run,
		"one skipped":           Run,
		"all skipped":           Run,
		"all failed":            Run,
		"failed and skipped":    Run,
		"success, rest running": Wait,
		"failed, rest running":  Wait,
		"skipped, rest running": Wait,
		"nothing finished":      Wait,
		"unknown state":         Wait,
		"no upstream":           Run,
	},
	"one_success": {
		"all success":           Run,
		"one failed":            Run,
		"one upstream_failed":   Run,
		"one skipped":           Run,
		"all skipped":           Skip,
		"all failed":            UpstreamFail,
		"failed and skipped":    UpstreamFail,
		"success, rest running": Run, // fires early
		"failed, rest running":  Wait,
		"skipped, rest running": Wait,
		"nothing finished":      Wait,
		"unknown state":         Run,
		"no upstream":           Run,
	},
	"one_failed": {
		"all success":           Skip,
		"one failed":            Run,
		"one upstream_failed":   Run, // upstream_failed counts as failed
		"one skipped":           Skip,
		"all skipped":           Skip,
		"all failed":            Run,
		"failed and skipped":    Run,
		"success, rest running": Wait,
		"failed, rest running":  Run, // fires early
		"skipped, rest running": Wait,
		"nothing finished":      Wait,
		"unknown state":         Wait,
		"no upstream":           Run,
	},
	"none_failed": {
		"all success":           Run,
		"one failed":            UpstreamFail,
		"one upstream_failed":   UpstreamFail,
		"one skipped":           Run,
		"all skipped":           Run, // unlike none_failed_min_one_success
		"all failed":            UpstreamFail,
		"failed and skipped":    UpstreamFail,
		"success, rest running": Wait,
		"failed, rest running":  UpstreamFail,
		"skipped, rest running": Wait,
		"nothing finished":      Wait,
		"unknown state":         Wait,
		"no upstream":           Run,
	},
	"none_failed_min_one_success": {
		"all success":           Run,
		"one failed":            UpstreamFail,
		"one upstream_failed":   UpstreamFail,
		"one skipped":           Run,
		"all skipped":           Skip,
		"all failed":            UpstreamFail,
		"failed and skipped":    UpstreamFail,
		"success, rest running": Wait,
		"failed, rest running":  UpstreamFail,
		"skipped, rest running": Wait,
		"nothing finished":      Wait,
		"unknown state":         Wait,
		"no upstream":           Run,
	},
	"none_skipped": {
		"all success":           Run,
		"one failed":            Run,
		"one upstream_failed":   Run,
		"one skipped":           Skip,
		"all skipped":           Skip,
		"all failed":            Run,
		"failed and skipped":    Skip,
		"success, rest running": Wait,
		"failed, rest running":  Wait,
		"skipped, rest running": Skip, // without waiting for the rest
		"nothing finished":      Wait,
		"unknown state":         Wait,
		"no upstream":           Run,
	},
	"always": {
		"all success":           Run,
		"one failed":            Run,
		"one upstream_failed":   Run,
		"one skipped":           Run,
		"all skipped":           Run,
		"all failed":            Run,
		"failed and skipped":    Run,
		"success, rest running": Run,
		"failed, rest running":  Run,
		"skipped, rest running": Run,
		"nothing finished":      Run,
		"unknown state":         Run,
		"no upstream":           Run,
	},
}

func TestDecide(t *testing.T) {
	got := map[string]map[string]Decision{}
	for rule := range wantDecisions {
		got[rule] = map[string]Decision{}
		for name, upstream := range triggerScenarios {
			d := Decide(rule, upstream)
			got[rule][name] = d
			reversed := slices.Clone(upstream)
			slices.Reverse(reversed)
			if r := Decide(rule, reversed); r != d {
				t.Errorf("Decide(%q, %v) = %v, but %v with the upstream states reversed", rule, upstream, d, r)
			}
		}
	}
	if diff := cmp.Diff(wantDecisions, got); diff != "" {
		t.Errorf("Decide mismatch (-want +got):\n%s", diff)
	}
}

func TestDecideCoversEveryRule(t *testing.T) {
	var tested []string
	for rule := range wantDecisions {
		tested = append(tested, rule)
	}
	want := slices.Clone(spec.TriggerRules)
	sort.Strings(want)
	sort.Strings(tested)
	if diff := cmp.Diff(want, tested); diff != "" {
		t.Errorf("tested rules differ from spec.TriggerRules (-spec +tested):\n%s", diff)
	}
}

func TestDecideSpecialRules(t *testing.T) {
	tests := map[string]struct {
		rule string
		want map[string]Decision
	}{
		"empty rule is all_success": {
			rule: "",
			want: wantDecisions[spec.DefaultTriggerRule],
		},
		"unknown rule fails whatever the upstream states": {
			rule: "all_skipped", // Airflow has it, dagflow does not
			want: func() map[string]Decision {
				m := map[string]Decision{}
				for name := range triggerScenarios {
					m[name] = UpstreamFail
				}
				return m
			}(),
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := map[string]Decision{}
			for scenario, upstream := range triggerScenarios {
				got[scenario] = Decide(tc.rule, upstream)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Decide(%q, ...) mismatch (-want +got):\n%s", tc.rule, diff)
			}
		})
	}
}

func TestValidRule(t *testing.T) {
	const all = "all_success, all_failed, all_done, one_success, one_failed, none_failed, none_failed_min_one_success, none_skipped, always"
	tests := map[string]struct {
		rule string
		want string // "" for no error
	}{
		"empty means the default": {rule: ""},
		"all_success":             {rule: "all_success"},
		"none_failed_min_one_success": {
			rule: "none_failed_min_one_success",
		},
		"typo": {
			rule: "all_sucess",
			want: `unknown trigger rule "all_sucess" (did you mean "all_success"?); use one of ` + all,
		},
		"wrong case": {
			rule: "ONE_FAILED",
			want: `unknown trigger rule "ONE_FAILED" (did you mean "one_failed"?); use one of ` + all,
		},
		"Airflow rule dagflow lacks": {
			rule: "one_done",
			want: `unknown trigger rule "one_done"; use one of ` + all,
		},
		"nothing close": {
			rule: "whenever",
			want: `unknown trigger rule "whenever"; use one of ` + all,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := ""
			if err := ValidRule(tc.rule); err != nil {
				got = err.Error()
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ValidRule(%q) mismatch (-want +got):\n%s", tc.rule, diff)
			}
		})
	}
}

func TestDecisionString(t *testing.T) {
	want := map[Decision]string{
		Wait:         "wait",
		Run:          "run",
		Skip:         "skip",
		UpstreamFail: "upstream_fail",
		Decision(9):  "Decision(9)",
	}
	got := map[Decision]string{}
	for d := range want {
		got[d] = d.String()
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("String() mismatch (-want +got):\n%s", diff)
	}
}
