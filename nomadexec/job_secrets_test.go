package nomadexec

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dagflow/dagflow/hcl/spec"
	"github.com/dagflow/dagflow/internal/devstack"
)

// secretValue returns a value no test output or spec could hold by chance, with the
// characters an env file needs quoted.
func secretValue(t *testing.T) (value, token string) {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	token = hex.EncodeToString(b)
	return `pa ss "w0rd" $HOME ` + token, token
}

// secretAttempt is an attempt whose task reads an env secret and a file secret and exits 0
// only if both hold want.
func secretAttempt(task, path, key, want string) Attempt {
	a := testAttempt("sec", "manual__1", task, 1, `test "$DB_PASSWORD" = "$WANT" && test "$(cat secrets/tls.key)" = "$WANT"`)
	a.Spec.Secrets = []spec.Secret{
		{Name: "DB_PASSWORD", Path: path, Key: key},
		{Name: "tls_key", Path: path, Key: key, File: "tls.key"},
	}
	// The test hands the task the value to compare with; a real DAG never has it.
	a.Env["WANT"] = want
	return a
}

// TestSecrets runs tasks with secrets on a real Nomad dev agent: the values arrive in the
// task and nowhere in the job spec; a missing variable is refused before registration, and a
// missing key fails the try promptly with a message naming the path and the key.
func TestSecrets(t *testing.T) {
	n := devstack.StartNomadT(t, nil)
	addr := "http://" + n.HTTPAddr
	e, client := testExecutor(t, addr, "")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	value, token := secretValue(t)
	if err := devstack.PutVariable(ctx, addr, "", "", "dagflow/sec/db", map[string]string{"password": value}); err != nil {
		t.Fatal(err)
	}
	rec := record(e.Watch(ctx, 0))

	t.Run("validate", func(t *testing.T) {
		a := secretAttempt("validate", "dagflow/sec/db", "password", "")
		a.Spec.Templates = []spec.Template{{Data: `{{ with nomadVar "dagflow/sec/db" }}{{ .password }}{{ end }}`, Destination: "secrets/raw.conf", ChangeMode: "noop", ErrMissingKey: true}}
		job, err := Job("", a)
		if err != nil {
			t.Fatal(err)
		}
		resp, _, err := client.Jobs().Validate(job, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Error != "" || len(resp.ValidationErrors) > 0 {
			t.Fatalf("Nomad refuses the job: %s %v", resp.Error, resp.ValidationErrors)
		}
	})

	t.Run("rendered in the allocation only", func(t *testing.T) {
		a := secretAttempt("ok", "dagflow/sec/db", "password", value)
		id := e.JobID(a)
		if registered, err := e.Submit(ctx, a); err != nil || !registered {
			t.Fatalf("Submit = %v, %v", registered, err)
		}
		done := rec.waitFor(t, id, 30*time.Second, "a terminal status", func(u AllocUpdate) bool { return u.Terminal() })
		if done.ClientStatus != "complete" || done.ExitCode != 0 {
			t.Fatalf("task did not receive the secret: %+v", done.AllocUpdate)
		}
		job, _, err := client.Jobs().Info(id, nil)
		if err != nil {
			t.Fatal(err)
		}
		// The job's own environment has WANT, put there by this test only: drop it.
		delete(job.TaskGroups[0].Tasks[0].Env, "WANT")
		b, _ := json.Marshal(job)
		if strings.Contains(string(b), token) {
			t.Fatalf("the registered job spec holds the secret value:\n%s", b)
		}
		if !strings.Contains(string(b), `nomadVar \"dagflow/sec/db\"`) {
			t.Fatalf("the registered job spec has no nomadVar template:\n%s", b)
		}
	})

	t.Run("missing variable", func(t *testing.T) {
		a := secretAttempt("novar", "dagflow/sec/nothing", "password", value)
		start := time.Now()
		registered, err := e.Submit(ctx, a)
		var missing *MissingVariableError
		if registered || !errors.As(err, &missing) || !errors.Is(err, ErrMissingVariable) {
			t.Fatalf("Submit = %v, %v; want a MissingVariableError", registered, err)
		}
		for _, want := range []string{`"dagflow/sec/nothing"`, `"password"`, `namespace "default"`, "DB_PASSWORD"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %s", err, want)
			}
		}
		st, err := e.Status(ctx, e.JobID(a))
		if err != nil || st.Exists {
			t.Fatalf("Status = %+v, %v; want no job", st, err)
		}
		t.Logf("refused in %s", time.Since(start))
	})

	t.Run("missing key", func(t *testing.T) {
		a := secretAttempt("nokey", "dagflow/sec/db", "username", value)
		id := e.JobID(a)
		start := time.Now()
		if registered, err := e.Submit(ctx, a); err != nil || !registered {
			t.Fatalf("Submit = %v, %v", registered, err)
		}
		done := rec.waitFor(t, id, 30*time.Second, "a terminal status", func(u AllocUpdate) bool { return u.Terminal() })
		if done.ClientStatus != "failed" || !done.Failed {
			t.Fatalf("allocation = %+v, want failed", done.AllocUpdate)
		}
		msg := SecretMessage(a.Spec, done.Message)
		t.Logf("failed in %s with %q, shown as %q", time.Since(start), done.Message, msg)
		for _, want := range []string{`"dagflow/sec/db"`, `"username"`} {
			if !strings.Contains(msg, want) {
				t.Errorf("message %q does not name %s", msg, want)
			}
		}
		if strings.Contains(msg, token) {
			t.Errorf("message %q holds the secret value", msg)
		}
	})
}

// BenchmarkSubmitSecrets measures what secrets add to registering a try on a dev Nomad: the
// check that lists the variables and the template blocks in the job. Each iteration submits
// one try without secrets and one with two (an env var and a file, one variable), new job
// IDs one at a time as the leader registers tries, alternating so that both see the same
// load; the metrics are the mean of each kind.
func BenchmarkSubmitSecrets(b *testing.B) {
	n := devstack.StartNomadT(b, nil)
	addr := "http://" + n.HTTPAddr
	e, err := New(&nomadapi.Config{Address: addr, TLSConfig: &nomadapi.TLSConfig{}}, "", hclog.NewNullLogger())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := devstack.PutVariable(ctx, addr, "", "", "dagflow/bench/db", map[string]string{"password": "p", "user": "u"}); err != nil {
		b.Fatal(err)
	}
	secrets := []spec.Secret{
		{Name: "DB_PASSWORD", Path: "dagflow/bench/db", Key: "password"},
		{Name: "db_user", Path: "dagflow/bench/db", Key: "user", File: "db.user"},
	}
	var plain, with time.Duration
	i := 0
	submit := func(task string, s []spec.Secret) time.Duration {
		a := testAttempt("bench", "manual__1", task, i, "exit 0")
		a.Spec.Secrets = s
		start := time.Now()
		if _, err := e.Submit(ctx, a); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	for b.Loop() {
		i++
		plain += submit("plain", nil)
		with += submit("secrets", secrets)
	}
	b.ReportMetric(float64(plain.Microseconds())/float64(i)/1000, "ms/plain")
	b.ReportMetric(float64(with.Microseconds())/float64(i)/1000, "ms/secrets")
}
