package devstack

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
)

// PutVariable writes the Nomad Variable path in namespace ns ("": default) of the Nomad at
// addr ("http://127.0.0.1:PORT") with the real `nomad var put`, as an operator would, with
// items as KEY=VALUE pairs replacing whatever the variable held. token is the Nomad ACL token
// ("": none). The command prints nothing (-out none), so the values reach no log.
//
// The values travel as command-line arguments, which other users of the machine can read in
// the process list while the command runs: this is for dev agents and tests, not production.
func PutVariable(ctx context.Context, addr, token, ns, path string, items map[string]string) error {
	bin, err := Binary("nomad")
	if err != nil {
		return err
	}
	if ns == "" {
		ns = "default"
	}
	args := []string{"var", "put", "-address", addr, "-namespace", ns, "-force", "-out", "none", path}
	for _, k := range slices.Sorted(maps.Keys(items)) {
		args = append(args, k+"="+items[k])
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	// Only the token comes from here: NOMAD_* settings of the caller's environment must not
	// point the command at another cluster.
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "NOMAD_") })
	if token != "" {
		cmd.Env = append(cmd.Env, "NOMAD_TOKEN="+token)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nomad var put %s in namespace %s: %w: %s", path, ns, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// ExampleVariablePath is the Nomad Variable the secrets example (examples/secrets.hcl) reads.
const ExampleVariablePath = "dagflow/examples/warehouse"

// PutExampleVariables puts, in the default namespace of the Nomad at addr, the variables the
// examples read, with made-up values: what `make dev` and the examples' test run them with.
func PutExampleVariables(ctx context.Context, addr, token string) error {
	return PutVariable(ctx, addr, token, "", ExampleVariablePath, map[string]string{
		"user":     "loader",
		"password": "dev only: not a real password",
		"tls_key":  "-----BEGIN PRIVATE KEY-----\nnot a real key\n-----END PRIVATE KEY-----",
	})
}
