package nomadexec

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/dagflow/dagflow/hcl/spec"
	"github.com/dagflow/dagflow/internal/devstack"
)

// TestSecretsRealVault runs a task with a vault block against a real Vault dev server and a
// Nomad agent configured for it with workload identities, set up as docs/language.md tells
// an installation: Vault's JWT auth method trusts Nomad's JWKS, a role binds the claims of
// dagflow's jobs (their namespace: job IDs change every try), and a policy lets the role read
// one secret. The task receives the secret through its template and exits 0 only when it is
// the value the test put; the value is not in the registered job. A role Vault does not
// have fails the try at once, naming the role, instead of leaving it pending.
func TestSecretsRealVault(t *testing.T) {
	if _, err := devstack.Binary("vault"); err != nil {
		t.Fatalf("%v (make tools builds Vault too)", err)
	}
	v := devstack.StartVaultT(t)
	n := devstack.StartNomadWithT(t, devstack.NomadOptions{ExtraConfig: `
vault {
  enabled = true
  address = "` + v.Addr + `"
  default_identity {
    aud = ["vault.io"]
    ttl = "1h"
  }
}
`})
	nomadAddr := "http://" + n.HTTPAddr
	value, _ := secretValue(t)
	vault := func(args ...string) {
		t.Helper()
		bin, err := devstack.Binary("vault")
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "VAULT_ADDR="+v.Addr, "VAULT_TOKEN="+devstack.VaultRootToken, "HOME="+t.TempDir())
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("vault %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	policy := t.TempDir() + "/etl.hcl"
	if err := os.WriteFile(policy, []byte(`path "secret/data/etl" { capabilities = ["read"] }`), 0o600); err != nil {
		t.Fatal(err)
	}
	role, err := json.Marshal(map[string]any{
		"role_type":               "jwt",
		"bound_audiences":         []string{"vault.io"},
		"bound_claims":            map[string]string{"nomad_namespace": "default"},
		"user_claim":              "/nomad_job_id",
		"user_claim_json_pointer": true,
		"claim_mappings":          map[string]string{"nomad_namespace": "nomad_namespace", "nomad_job_id": "nomad_job_id", "nomad_task": "nomad_task"},
		"token_type":              "service",
		"token_policies":          []string{"etl"},
		"token_period":            "30m",
	})
	if err != nil {
		t.Fatal(err)
	}
	roleFile := t.TempDir() + "/role.json"
	if err := os.WriteFile(roleFile, role, 0o600); err != nil {
		t.Fatal(err)
	}
	vault("auth", "enable", "-path=jwt-nomad", "jwt")
	vault("write", "auth/jwt-nomad/config", "jwks_url="+nomadAddr+"/.well-known/jwks.json", "jwt_supported_algs=RS256,EdDSA", "default_role=etl")
	vault("write", "auth/jwt-nomad/role/etl", "@"+roleFile)
	vault("policy", "write", "etl", policy)
	vault("kv", "put", "secret/etl", "password="+value)

	e, client := testExecutor(t, nomadAddr, "")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rec := record(e.Watch(ctx, 0))
	attempt := func(task, role string) Attempt {
		a := testAttempt("vault", "manual__1", task, 1, `test "$(cat secrets/db.pass)" = "$WANT"`)
		a.Spec.Env = map[string]string{"WANT": value}
		env := false
		a.Spec.Vault = &spec.Vault{Role: role, ChangeMode: "noop", Env: &env}
		a.Spec.Templates = []spec.Template{{
			Data:        `{{ with secret "secret/data/etl" }}{{ .Data.data.password }}{{ end }}`,
			Destination: "secrets/db.pass", ChangeMode: "noop", ErrMissingKey: true,
		}}
		return a
	}

	t.Run("the task reads its secret", func(t *testing.T) {
		a := attempt("load", "etl")
		id := e.JobID(a)
		if registered, err := e.Submit(ctx, a); err != nil || !registered {
			t.Fatalf("Submit = %v, %v", registered, err)
		}
		done := rec.waitFor(t, id, time.Minute, "a terminal status", func(u AllocUpdate) bool { return u.Terminal() })
		if done.ClientStatus != "complete" || done.ExitCode != 0 {
			t.Fatalf("the task did not receive the Vault secret: %+v", done.AllocUpdate)
		}
		job, _, err := client.Jobs().Info(id, nil)
		if err != nil {
			t.Fatal(err)
		}
		delete(job.TaskGroups[0].Tasks[0].Env, "WANT") // the test's own copy, to compare with
		if b, _ := json.Marshal(job); strings.Contains(string(b), value) {
			t.Fatalf("the registered job holds the secret value:\n%s", b)
		}
	})

	t.Run("a role Vault does not have", func(t *testing.T) {
		a := attempt("norole", "nope")
		id := e.JobID(a)
		if registered, err := e.Submit(ctx, a); err != nil || !registered {
			t.Fatalf("Submit = %v, %v", registered, err)
		}
		done := rec.waitFor(t, id, time.Minute, "a terminal status", func(u AllocUpdate) bool { return u.Terminal() })
		if done.ClientStatus != "failed" {
			t.Fatalf("allocation = %+v, want failed", done.AllocUpdate)
		}
		t.Logf("failed with %q", done.Message)
		if !strings.Contains(done.Message, "nope") && !strings.Contains(strings.ToLower(done.Message), "vault") {
			t.Errorf("message %q names neither the role nor Vault", done.Message)
		}
	})
}
