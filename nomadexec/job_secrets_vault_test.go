package nomadexec

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dagflow/dagflow/hcl/spec"
	"github.com/dagflow/dagflow/internal/devstack"
)

// vaultAgentConfig configures a Nomad agent for Vault with workload identities (JWT auth),
// as an installation does. The Vault at address is never reached: this test checks Nomad's
// own validation and registration of the vault block, and TestSecretsRealVault runs a task
// against a real Vault.
const vaultAgentConfig = `
vault {
  enabled = true
  address = "http://127.0.0.1:1"
  default_identity {
    aud = ["vault.io"]
    ttl = "1h"
  }
}
`

// vaultAttempt is an attempt with a vault block and a template reading a Vault secret.
func vaultAttempt(task string) Attempt {
	a := testAttempt("vault", "manual__1", task, 1, `test -n "$VAULT_TOKEN"`)
	env := false
	a.Spec.Vault = &spec.Vault{Role: "etl", ChangeMode: "noop", Env: &env}
	a.Spec.Templates = []spec.Template{{
		Data:        `{{ with secret "kv/data/etl" }}{{ .Data.data.password }}{{ end }}`,
		Destination: "secrets/db.pass", ChangeMode: "noop", ErrMissingKey: true,
	}}
	return a
}

// TestSecretsVault checks the vault block against Nomad: a Nomad configured for Vault
// validates and registers the job with the vault block as written; a Nomad without Vault
// refuses it, and Submit says so at once instead of retrying a registration that cannot
// succeed.
func TestSecretsVault(t *testing.T) {
	t.Run("Nomad with Vault", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		e, client := testExecutor(t, "http://"+devstack.StartNomadWithT(t, devstack.NomadOptions{ExtraConfig: vaultAgentConfig}).HTTPAddr, "")
		a := vaultAttempt("load")
		if registered, err := e.Submit(ctx, a); err != nil || !registered {
			t.Fatalf("Submit = %v, %v", registered, err)
		}
		job, _, err := client.Jobs().Info(e.JobID(a), nil)
		if err != nil {
			t.Fatal(err)
		}
		v := job.TaskGroups[0].Tasks[0].Vault
		if v == nil || v.Role != "etl" || v.ChangeMode == nil || *v.ChangeMode != "noop" || v.Env == nil || *v.Env {
			t.Fatalf("the registered job's vault block is %+v; want role etl, change_mode noop, env false", v)
		}
		if err := e.Stop(ctx, e.JobID(a)); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("Nomad without Vault", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		e, _ := testExecutor(t, "http://"+devstack.StartNomadWithT(t, devstack.NomadOptions{}).HTTPAddr, "")
		a := vaultAttempt("novault")
		registered, err := e.Submit(ctx, a)
		if registered || !errors.Is(err, ErrInvalidAttempt) || !strings.Contains(err.Error(), "Vault") {
			t.Fatalf("Submit = %v, %v; want an invalid attempt naming Vault", registered, err)
		}
		t.Logf("refused: %v", err)
	})
}
