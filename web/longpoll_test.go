package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dagflow/dagflow/api"
	"github.com/dagflow/dagflow/internal/testcluster"
)

// answer is what a GET got, read where t.Fatal cannot be called.
type answer struct {
	status int
	index  uint64
	role   string // X-Dagflow-Role
	body   string
	err    error
}

func get(url, token string) answer {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return answer{err: err}
	}
	if token != "" {
		req.Header.Set(api.TokenHeader, token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	index, _ := strconv.ParseUint(resp.Header.Get("X-Dagflow-Index"), 10, 64)
	return answer{status: resp.StatusCode, index: index, role: resp.Header.Get("X-Dagflow-Role"), body: string(b), err: err}
}

// longPoll asks url with ?index=index&wait=30s in the background.
func longPoll(url, token string, index uint64) <-chan answer {
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	out := make(chan answer, 1)
	go func() { out <- get(fmt.Sprintf("%s%sindex=%d&wait=30s", url, sep, index), token) }()
	return out
}

// now reads url without an index: it answers at once, with an index to long-poll with.
func now(t *testing.T, url, token string) answer {
	t.Helper()
	a := get(url, token)
	if a.err != nil || a.status != 200 || a.index == 0 {
		t.Fatalf("GET %s: %d, index %d, %v: %s", url, a.status, a.index, a.err, a.body)
	}
	return a
}

// waiting fails the test when the long-poll answered within a second, with nothing changed.
func waiting(t *testing.T, what string, ch <-chan answer) {
	t.Helper()
	select {
	case a := <-ch:
		t.Fatalf("the long-poll of %s answered before anything changed: %d %s", what, a.status, a.body)
	case <-time.After(time.Second):
	}
}

// changed waits for the long-poll's answer after a change, which has an index above since.
func changed(t *testing.T, what string, ch <-chan answer, since uint64) answer {
	t.Helper()
	select {
	case a := <-ch:
		if a.err != nil || a.status != 200 {
			t.Fatalf("the long-poll of %s: %d %v: %s", what, a.status, a.err, a.body)
		}
		if a.index <= since {
			t.Fatalf("the long-poll of %s answered with index %d, want more than %d", what, a.index, since)
		}
		return a
	case <-time.After(20 * time.Second):
		t.Fatalf("the long-poll of %s did not answer within 20s of a change", what)
	}
	return answer{}
}

// until long-polls url from index on until ok accepts an answer, which it returns; every answer
// must come with a larger index than the one before.
func until(t *testing.T, what, url, token string, index uint64, ok func(answer) bool) answer {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		a := changed(t, what, longPoll(url, token, index), index)
		if ok(a) {
			return a
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after a minute of long-polls; last: %s", what, a.body)
		}
		index = a.index
	}
}

// TestLongPolls: a DAG, a run, the deliveries and the assets answer at once without ?index=,
// and with the index of their last answer wait until what they show changed, then answer with
// a larger one; a bad index or wait is refused naming it; a token revoked during a long-poll
// gets 403, not the data.
func TestLongPolls(t *testing.T) {
	t.Parallel()
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(hooks.Close)
	c := testcluster.New(t, testcluster.Options{})
	c.Apply(fmt.Sprintf(`
dag "lp" {
  on_success {
    webhook {
      url = "%s/ok"
    }
  }
  task "hold" {
    command = "/bin/sh"
    args    = ["-c", "sleep 600"]
    outlets = ["lp.table"]
  }
}
`, hooks.URL))
	ctx := context.Background()
	base := c.Instances[0].URL
	viewer := c.Token(api.RoleViewer)
	op := c.Client(0, c.Token(api.RoleOperator))
	res, err := op.DAGs().Trigger(ctx, "lp", &api.TriggerRequest{})
	if err != nil {
		t.Fatal(err)
	}
	run := res.RunIDs[0]
	c.WaitRun("lp", run, 2*time.Minute, "running its task", func(r *api.Run) bool {
		return len(r.Tasks) == 1 && r.Tasks[0].State == "running"
	})
	paths := map[string]string{
		"a DAG":          "/v1/dags/lp",
		"a run":          "/v1/dags/lp/runs/" + run,
		"the deliveries": "/v1/deliveries?dag=lp",
		"the assets":     "/v1/assets",
		"an asset":       "/v1/assets/lp.table",
	}

	t.Run("bad index or wait", func(t *testing.T) {
		for what, path := range paths {
			for _, v := range []string{"index=-1", "index=x", "wait=1h", "wait=soon", "wait=0s"} {
				sep := "?"
				if strings.Contains(path, "?") {
					sep = "&"
				}
				a := get(base+path+sep+v, viewer)
				field, _, _ := strings.Cut(v, "=")
				if a.status != 400 || !strings.Contains(strings.ReplaceAll(a.body, " ", ""), `"field":"`+field+`"`) {
					t.Errorf("%s, ?%s: %d %s, want 400 naming the field", what, v, a.status, a.body)
				}
			}
		}
	})

	t.Run("DAG", func(t *testing.T) {
		url := base + paths["a DAG"]
		first := now(t, url, viewer)
		ch := longPoll(url, viewer, first.index)
		waiting(t, "a DAG", ch)
		if err := op.DAGs().Pause(ctx, "lp"); err != nil {
			t.Fatal(err)
		}
		var d api.DAG
		if a := changed(t, "a DAG", ch, first.index); json.Unmarshal([]byte(a.body), &d) != nil || !d.Paused {
			t.Errorf("after the pause, the DAG long-poll answered %s", a.body)
		}
	})

	t.Run("run and deliveries", func(t *testing.T) {
		url, dURL := base+paths["a run"], base+paths["the deliveries"]
		first, dFirst := now(t, url, viewer), now(t, dURL, viewer)
		if dFirst.body != "[]\n" {
			t.Fatalf("deliveries before the run ended: %s", dFirst.body)
		}
		ch, dCh := longPoll(url, viewer, first.index), longPoll(dURL, viewer, dFirst.index)
		waiting(t, "a run", ch)
		waiting(t, "the deliveries", dCh)
		if _, err := op.Runs().Mark(ctx, "lp", run, "hold", &api.MarkRequest{State: "success"}); err != nil {
			t.Fatal(err)
		}
		succeeded := func(a answer) bool {
			var r api.Run
			return json.Unmarshal([]byte(a.body), &r) == nil && r.State == "success" && r.Tasks[0].State == "success"
		}
		if a := changed(t, "a run", ch, first.index); !succeeded(a) {
			until(t, "the run succeeds", url, viewer, a.index, succeeded)
		}
		listed := func(a answer) bool { return strings.Contains(a.body, hooks.URL+"/ok") }
		if a := changed(t, "the deliveries", dCh, dFirst.index); !listed(a) {
			until(t, "the on_success delivery is listed", dURL, viewer, a.index, listed)
		}
	})

	t.Run("assets", func(t *testing.T) {
		list, one := base+paths["the assets"], base+paths["an asset"]
		lFirst, oFirst := now(t, list, viewer), now(t, one, viewer)
		lCh, oCh := longPoll(list, viewer, lFirst.index), longPoll(one, viewer, oFirst.index)
		waiting(t, "the assets", lCh)
		waiting(t, "an asset", oCh)
		if _, err := op.Assets().Emit(ctx, "lp.table", &api.EmitRequest{}); err != nil {
			t.Fatal(err)
		}
		if a := changed(t, "the assets", lCh, lFirst.index); !strings.Contains(a.body, `"seq": 1`) {
			t.Errorf("after an emit, the asset list long-poll answered %s", a.body)
		}
		if a := changed(t, "an asset", oCh, oFirst.index); !strings.Contains(a.body, `"seq": 1`) {
			t.Errorf("after an emit, the asset long-poll answered %s", a.body)
		}
	})

	t.Run("revoked token", func(t *testing.T) {
		admin := c.Client(0, c.AdminToken).ACL()
		tok, err := admin.Create(ctx, &api.TokenRequest{Name: "revoked during a long-poll", Role: api.RoleViewer})
		if err != nil {
			t.Fatal(err)
		}
		url := base + paths["a DAG"]
		first := now(t, url, tok.SecretID)
		// The token's own key is newer than the DAG: the first long-poll may answer at once,
		// with an index past it.
		index := first.index
		if a := get(fmt.Sprintf("%s?index=%d&wait=1s", url, index), tok.SecretID); a.status == 200 {
			index = a.index
		}
		ch := longPoll(url, tok.SecretID, index)
		waiting(t, "a DAG", ch)
		if err := admin.Delete(ctx, tok.AccessorID); err != nil {
			t.Fatal(err)
		}
		select {
		case a := <-ch:
			if a.status != 403 || !strings.Contains(a.body, "token not found") || strings.Contains(a.body, `"name"`) {
				t.Errorf("a long-poll whose token was revoked answered %d %s, want 403 and no data", a.status, a.body)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("a long-poll whose token was revoked did not end within 20s")
		}
	})
}

// TestLongPollEndsOnTakeover: a long-poll on a standby ends when the standby takes over, with
// nothing it watches changed, so a page following it shows the new role without waiting out
// the 10-minute wait it asked for.
func TestLongPollEndsOnTakeover(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, testcluster.Options{Instances: 2})
	url := c.Instances[1].URL + "/v1/dags"
	first := now(t, url, c.AdminToken)
	if first.role != "standby" {
		t.Fatalf("instance 1 answered as %q, want standby", first.role)
	}
	ch := make(chan answer, 1)
	go func() { ch <- get(fmt.Sprintf("%s?index=%d&wait=10m", url, first.index), c.AdminToken) }()
	waiting(t, "the DAG list on the standby", ch)
	c.Instances[0].Server.Stop()
	select {
	case a := <-ch:
		if a.err != nil || a.status != 200 || a.role != "active" || a.index < first.index {
			t.Fatalf("the long-poll answered %d as %q with index %d (asked %d), %v: %s; want 200 as active", a.status, a.role, a.index, first.index, a.err, a.body)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("the standby took over, but its long-poll did not answer within 2 minutes")
	}
}
