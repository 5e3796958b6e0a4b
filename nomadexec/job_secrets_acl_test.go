package nomadexec

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dagflow/dagflow/hcl/spec"
	"github.com/dagflow/dagflow/internal/devstack"
)

// The policies docs/language.md ("Secrets and Nomad ACLs") tells an installation to write.
const (
	// secretsTaskPolicy is attached to a namespace (`nomad acl policy apply -namespace NS`):
	// every job of that namespace, whatever its ID, may read the variables under dagflow/.
	secretsTaskPolicy = `
namespace "default" {
  variables {
    path "dagflow/*" {
      capabilities = ["read"]
    }
  }
}
`
	// secretsServerPolicy is dagflow's own token: jobs in every namespace, and listing the
	// variables (paths and metadata, never values) for the check before a try is registered.
	secretsServerPolicy = `
namespace "*" {
  policy = "write"
  variables {
    path "dagflow/*" {
      capabilities = ["list"]
    }
    path "dagflow/purged/*" {
      capabilities = ["write", "read", "list", "destroy"]
    }
  }
}
node {
  policy = "read"
}
`
)

// TestSecretsACL runs tries with secrets on an ACL-enabled Nomad: with the task policy
// attached to the namespace, a try (a new job ID each time) reads its variable; a try of
// another namespace, which the policy does not name, is refused the variable (Nomad keeps it
// pending, and BlockedSecret says why), and dagflow's own token, which may only list
// variables, cannot read the value; it writes and deletes the tombstones of purged jobs. A
// namespace without the task policy cannot run even a try without secrets, and BlockedSecret
// names the policy it needs.
func TestSecretsACL(t *testing.T) {
	n := devstack.StartNomadWithT(t, devstack.NomadOptions{ACL: true})
	addr := "http://" + n.HTTPAddr
	mgmt, err := nomadapi.NewClient(&nomadapi.Config{Address: addr, SecretID: n.Token, TLSConfig: &nomadapi.TLSConfig{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := mgmt.Namespaces().Register(&nomadapi.Namespace{Name: "other"}, nil); err != nil {
		t.Fatal(err)
	}
	value, token := secretValue(t)
	for _, ns := range []string{"default", "other"} {
		if err := devstack.PutVariable(ctx, addr, n.Token, ns, "dagflow/acl/db", map[string]string{"password": value}); err != nil {
			t.Fatal(err)
		}
	}
	// As the docs say to: the CLI, with the policy bound to the namespace and no job.
	nomadCLI(t, addr, n.Token, "acl", "policy", "apply", "-namespace", "default", "-description", "dagflow tasks read their secrets", "dagflow-secrets", writeFile(t, "task.hcl", secretsTaskPolicy))
	nomadCLI(t, addr, n.Token, "acl", "policy", "apply", "dagflow-server", writeFile(t, "server.hcl", secretsServerPolicy))
	tok, _, err := mgmt.ACLTokens().Create(&nomadapi.ACLToken{Name: "dagflow", Type: "client", Policies: []string{"dagflow-server"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	e, client := testExecutor(t, addr, tok.SecretID)
	rec := record(e.Watch(ctx, 0))

	t.Run("dagflow's token cannot read the value", func(t *testing.T) {
		metas, _, err := client.Variables().PrefixList("dagflow/acl", nil)
		if err != nil || len(metas) != 1 {
			t.Fatalf("list = %v, %v; want the one variable", metas, err)
		}
		if v, _, err := client.Variables().Read("dagflow/acl/db", nil); err == nil {
			t.Fatalf("dagflow's token read the variable: %d items", len(v.Items))
		}
	})

	// Two tries of the same task, two job IDs: the namespace's policy covers both.
	for try := 1; try <= 2; try++ {
		a := secretAttempt("load", "dagflow/acl/db", "password", value)
		a.Try = try
		id := e.JobID(a)
		if registered, err := e.Submit(ctx, a); err != nil || !registered {
			t.Fatalf("Submit try %d = %v, %v", try, registered, err)
		}
		done := rec.waitFor(t, id, time.Minute, "a terminal status", func(u AllocUpdate) bool { return u.Terminal() })
		if done.ClientStatus != "complete" || done.ExitCode != 0 {
			t.Fatalf("try %d (job %s) did not receive its secret: %+v", try, id, done.AllocUpdate)
		}
	}

	t.Run("dagflow's token writes and sweeps tombstones", func(t *testing.T) {
		id := e.JobID(secretAttempt("load", "dagflow/acl/db", "password", value)) // try 1, ended above
		if err := e.Purge(ctx, id); err != nil {
			t.Fatalf("purge with dagflow's token: %v", err)
		}
		if _, _, err := mgmt.Variables().Read(GuardPath(id), nil); err != nil {
			t.Fatalf("the tombstone of %s: %v", id, err)
		}
		if n, err := e.SweepGuards(ctx, time.Now().Add(time.Second)); err != nil || n != 1 {
			t.Errorf("SweepGuards = %d, %v; want 1 deleted", n, err)
		}
	})

	t.Run("another namespace", func(t *testing.T) {
		a := secretAttempt("other", "dagflow/acl/db", "password", value)
		a.Queue = &spec.Queue{Name: "other", Namespace: "other"}
		id := e.JobID(a)
		start := time.Now()
		if registered, err := e.Submit(ctx, a); err != nil || !registered {
			t.Fatalf("Submit = %v, %v", registered, err)
		}
		// Nomad holds the allocation pending; dagflow sees why and would fail the try.
		var msg string
		rec.waitFor(t, id, time.Minute, "a template waiting for the variable", func(u AllocUpdate) bool {
			msg = BlockedSecret(a.Spec, u.AllocStatus)
			return msg != ""
		})
		t.Logf("blocked after %s: %q", time.Since(start), msg)
		for _, want := range []string{"DB_PASSWORD", `"dagflow/acl/db"`, `namespace "other"`, `"password"`} {
			if !strings.Contains(msg, want) {
				t.Errorf("message %q does not name %s", msg, want)
			}
		}
		if strings.Contains(msg, token) {
			t.Fatalf("message %q holds the value", msg)
		}
		if err := e.Stop(ctx, id); err != nil {
			t.Fatal(err)
		}
	})

	// A namespace with no policy at all: its tasks cannot read even their tombstone check.
	t.Run("a task without secrets in a namespace without the policy", func(t *testing.T) {
		a := testAttempt("plain", "manual__1", "noacl", 1, "true")
		a.Queue = &spec.Queue{Name: "other", Namespace: "other"}
		id := e.JobID(a)
		if registered, err := e.Submit(ctx, a); err != nil || !registered {
			t.Fatalf("Submit = %v, %v", registered, err)
		}
		var msg string
		u := rec.waitFor(t, id, time.Minute, "a template waiting for the tombstone", func(u AllocUpdate) bool {
			msg = BlockedSecret(a.Spec, u.AllocStatus)
			return msg != "" || u.Terminal()
		})
		t.Logf("update %+v: %q", u.AllocUpdate, msg)
		for _, want := range []string{GuardPrefix, `namespace "other"`} {
			if !strings.Contains(msg, want) {
				t.Errorf("message %q does not name %s", msg, want)
			}
		}
		if err := e.Stop(ctx, id); err != nil {
			t.Fatal(err)
		}
	})
}

// nomadCLI runs the real nomad command against addr with token.
func nomadCLI(t *testing.T, addr, token string, args ...string) {
	t.Helper()
	bin, err := devstack.Binary("nomad")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "NOMAD_ADDR="+addr, "NOMAD_TOKEN="+token)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nomad %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
