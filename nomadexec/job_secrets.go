package nomadexec

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dagflow/dagflow/hcl/spec"
)

// SecretsEnvFile is where Nomad renders the environment variables of a task's secrets, in the
// task's secrets directory (a tmpfs where the driver supports one, never part of the job spec).
// Nomad reads it into the task's environment before the task starts.
const SecretsEnvFile = "secrets/dagflow-secrets.env"

// secretFilePerms is the mode of a secret rendered to a file: readable by the task's user only.
const secretFilePerms = "0600"

// addSecrets adds the Nomad template blocks that render task t's secrets, its raw templates
// and its vault block to the Nomad task. The templates name the variables (nomadVar) and keys;
// the values exist only inside the allocation, so the job spec dagflow registers, and every
// copy of it Nomad or dagflow keeps, holds none.
//
// Every template sets error_on_missing_key (unless a raw template turns it off), so a key the
// variable lacks fails the task with Nomad's "Template failed" event (see SecretMessage), and
// change_mode noop unless a raw template says otherwise: a try does not restart when a
// variable changes while it runs.
func addSecrets(task *nomadapi.Task, t *spec.Task) {
	var env strings.Builder
	for _, s := range t.Secrets {
		if s.File != "" {
			task.Templates = append(task.Templates, &nomadapi.Template{
				EmbeddedTmpl:  ptr(fmt.Sprintf("{{ with nomadVar %q }}{{ .%s }}{{ end }}", s.Path, s.Key)),
				DestPath:      ptr("secrets/" + s.File),
				ChangeMode:    ptr(spec.DefaultTemplateChangeMode),
				Perms:         ptr(secretFilePerms),
				ErrMissingKey: ptr(true),
			})
			continue
		}
		// toJSON quotes the value, which the env file parser (go-envparse) unquotes, so values
		// with spaces, quotes or newlines arrive as they are.
		fmt.Fprintf(&env, "{{ with nomadVar %q }}%s={{ .%s | toJSON }}{{ end }}\n", s.Path, s.Name, s.Key)
	}
	if env.Len() > 0 {
		task.Templates = append(task.Templates, &nomadapi.Template{
			EmbeddedTmpl:  ptr(env.String()),
			DestPath:      ptr(SecretsEnvFile),
			Envvars:       ptr(true),
			ChangeMode:    ptr(spec.DefaultTemplateChangeMode),
			Perms:         ptr(secretFilePerms),
			ErrMissingKey: ptr(true),
		})
	}
	for _, rt := range t.Templates {
		tmpl := &nomadapi.Template{
			DestPath:      ptr(rt.Destination),
			Envvars:       ptr(rt.Env),
			ChangeMode:    ptr(rt.ChangeMode),
			ErrMissingKey: ptr(rt.ErrMissingKey),
		}
		if rt.Data != "" {
			tmpl.EmbeddedTmpl = ptr(rt.Data)
		}
		if rt.Source != "" {
			tmpl.SourcePath = ptr(rt.Source)
		}
		if rt.ChangeSignal != "" {
			tmpl.ChangeSignal = ptr(rt.ChangeSignal)
		}
		if rt.Perms != "" {
			tmpl.Perms = ptr(rt.Perms)
		}
		if rt.LeftDelim != "" {
			tmpl.LeftDelim = ptr(rt.LeftDelim)
		}
		if rt.RightDelim != "" {
			tmpl.RightDelim = ptr(rt.RightDelim)
		}
		task.Templates = append(task.Templates, tmpl)
	}
	if v := t.Vault; v != nil {
		nv := &nomadapi.Vault{Role: v.Role, Cluster: v.Cluster, Env: v.Env}
		if v.Namespace != "" {
			nv.Namespace = ptr(v.Namespace)
		}
		if v.ChangeMode != "" {
			nv.ChangeMode = ptr(v.ChangeMode)
		}
		if v.ChangeSignal != "" {
			nv.ChangeSignal = ptr(v.ChangeSignal)
		}
		if v.DisableFile {
			nv.DisableFile = ptr(true)
		}
		if v.AllowTokenExpiration {
			nv.AllowTokenExpiration = ptr(true)
		}
		task.Vault = nv
	}
}

// MissingVariableError says that a Nomad Variable a secret reads does not exist in the
// namespace of the try's job. It wraps ErrMissingVariable.
type MissingVariableError struct {
	Secret    string // the secret's name
	Path, Key string
	Namespace string
}

// Error implements error; the text is meant for people, as a try's message.
func (e *MissingVariableError) Error() string {
	// Nomad's list leaves out what the token may not list, so a missing capability looks the
	// same as a missing variable.
	return fmt.Sprintf("secret %s: Nomad variable %q does not exist in namespace %q (key %q), or dagflow's Nomad token may not list it; create it with `nomad var put -namespace %s %s %s=...`",
		e.Secret, e.Path, e.Namespace, e.Key, e.Namespace, e.Path, e.Key)
}

// Unwrap returns ErrMissingVariable.
func (e *MissingVariableError) Unwrap() error { return ErrMissingVariable }

// checkSecrets checks, before job is registered for attempt a in namespace ns, what Nomad
// would otherwise turn into a try that never ends or a registration retried for ever:
//
//   - The first secret whose Nomad Variable does not exist in ns is reported as a
//     *MissingVariableError. Nomad's template would hold the allocation in pending until the
//     variable appears, for ever or until the task's timeout. The check lists variables, which
//     returns paths and metadata only: dagflow never reads a secret's value. With ACLs the
//     token needs the list capability on the paths (see docs/language.md).
//   - A job with a vault block is validated by Nomad first (/v1/validate/job): a cluster
//     without Vault refuses it ("Vault "default" not enabled but used in the job") with the
//     same status 500 as a passing server error, which Submit's callers retry. A refusal is
//     an ErrInvalidAttempt error. Jobs without one skip the extra request.
//
// Other errors wrap ErrNomad.
func (e *Executor) checkSecrets(ctx context.Context, a Attempt, job *nomadapi.Job, ns string) error {
	if task := job.TaskGroups[0].Tasks[0]; task.Vault != nil {
		q := (&nomadapi.WriteOptions{Namespace: ns}).WithContext(ctx)
		resp, _, err := e.client.Jobs().Validate(job, q)
		if err != nil {
			return fmt.Errorf("validate job %q: %w: %w", *job.ID, ErrNomad, err)
		}
		if len(resp.ValidationErrors) > 0 {
			return fmt.Errorf("build job for %s: %w: Nomad refuses it: %s", describe(a), ErrInvalidAttempt, strings.Join(resp.ValidationErrors, "; "))
		}
	}
	if len(a.Spec.Secrets) == 0 {
		return nil
	}
	if ns == "" {
		ns = e.namespace
	}
	exists := map[string]bool{}
	for _, s := range a.Spec.Secrets {
		found, seen := exists[s.Path]
		if !seen {
			q := (&nomadapi.QueryOptions{Namespace: ns}).WithContext(ctx)
			metas, _, err := e.client.Variables().PrefixList(s.Path, q)
			if err != nil {
				return fmt.Errorf("check variable %q of secret %s: %w: %w", s.Path, s.Name, ErrNomad, err)
			}
			for _, m := range metas {
				exists[m.Path] = true
			}
			found = exists[s.Path]
			exists[s.Path] = found
		}
		if !found {
			return &MissingVariableError{Secret: s.Name, Path: s.Path, Key: s.Key, Namespace: ns}
		}
	}
	return nil
}

// missingKeyPattern finds the key in the error Go's text/template gives for a missing map key
// (error_on_missing_key): `map has no entry for key "password"`.
var missingKeyPattern = regexp.MustCompile(`map has no entry for key "([^"]*)"`)

// SecretMessage returns msg, a try's outcome message, in terms of task t's secrets when it is
// Nomad's "Template failed" event for a key one of them reads: "secret DB_PASSWORD: Nomad
// variable "dagflow/etl/db" has no key "password"". Nomad's own text ("Template failed:
// (dynamic): execute: template: :1:39: executing "" at <.password>: map has no entry for key
// "password"", v1.11.3) names the key but not the variable. Other messages come back
// unchanged, a raw template's included.
func SecretMessage(t *spec.Task, msg string) string {
	if t == nil || !strings.HasPrefix(msg, "Template failed") {
		return msg
	}
	m := missingKeyPattern.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	var names, paths []string
	for _, s := range t.Secrets {
		if s.Key == m[1] {
			names = append(names, s.Name)
			if !slices.Contains(paths, s.Path) {
				paths = append(paths, s.Path)
			}
		}
	}
	switch {
	case len(names) == 0:
		return msg
	case len(paths) == 1:
		return fmt.Sprintf("%s %s: Nomad variable %q has no key %q", plural("secret", len(names)), strings.Join(names, ", "), paths[0], m[1])
	}
	return fmt.Sprintf("secrets %s: one of the Nomad variables %s has no key %q", strings.Join(names, ", "), quoted(paths), m[1])
}

func plural(word string, n int) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

func quoted(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

// blockedVarPattern finds the Nomad Variables a template waits for in the task event Nomad's
// client emits when a template's dependencies are still missing after its event rate
// (client template max_template_event_rate, 3 s by default): "Missing:
// nomad.var.block(dagflow/etl/db@default.global)" (v1.11.3). The template keeps waiting,
// and the allocation stays pending, as long as the variable does not exist or the task's
// workload identity may not read it: Nomad answers both the same way.
// The guard's nomadVarExists shows as nomad.var.get(...) instead.
var blockedVarPattern = regexp.MustCompile(`nomad\.var\.(?:block|get)\(([^@)]*)@([^.)]*)\.[^)]*\)`)

// BlockedSecret returns the message a try fails with when st, an allocation of task t that is
// not over, waits for a Nomad Variable its templates read, and "" otherwise. dagflow checks
// that a secret's variable exists before it registers the try (see Submit), so what is left
// is a variable the try's namespace has no ACL policy to read, one deleted in between, or one
// a raw template reads: Nomad would hold the allocation pending until the task's timeout, or
// for ever.
func BlockedSecret(t *spec.Task, st AllocStatus) string {
	if st.Terminal() || !strings.HasPrefix(st.Message, "Missing: ") {
		return ""
	}
	m := blockedVarPattern.FindStringSubmatch(st.Message)
	if m == nil {
		return ""
	}
	path, ns := m[1], m[2]
	if strings.HasPrefix(path, GuardPrefix) {
		return fmt.Sprintf("the try cannot read Nomad variables under %q in namespace %q, which every try reads before it starts (to tell whether its job was purged: see docs/scheduler.md): no ACL policy lets the jobs of namespace %q read them; bind one that grants read on %q (see \"Secrets and Nomad ACLs\" in docs/language.md)",
			GuardPrefix, ns, ns, GuardPrefix+"*")
	}
	what := "a template block"
	if t != nil {
		var names, keys []string
		for _, s := range t.Secrets {
			if s.Path == path {
				names, keys = append(names, s.Name), append(keys, strconv.Quote(s.Key))
			}
		}
		if len(names) > 0 {
			what = fmt.Sprintf("%s %s (key %s)", plural("secret", len(names)), strings.Join(names, ", "), strings.Join(slices.Compact(keys), ", "))
		}
	}
	return fmt.Sprintf("%s: the try cannot read Nomad variable %q in namespace %q: it does not exist, or no ACL policy lets the jobs of namespace %q read it (see \"Secrets and Nomad ACLs\" in docs/language.md)",
		what, path, ns, ns)
}
