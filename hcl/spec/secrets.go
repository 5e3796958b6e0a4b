package spec

import (
	"fmt"
	"maps"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// Secret is one value a task receives from a Nomad Variable. Nomad renders it inside the
// allocation (a template block with nomadVar), so dagflow never reads the value: the
// definition names where the value lives, not what it is.
type Secret struct {
	// Name is the block label: the environment variable the value becomes, or, with File,
	// only the secret's name in messages.
	Name string `json:"name"`
	Path string `json:"path"`           // the Nomad Variable's path, in the task's namespace
	Key  string `json:"key"`            // the item of the variable that holds the value
	File string `json:"file,omitempty"` // rendered to secrets/FILE instead of an env var
}

// Template is a raw Nomad template block, passed through to the task: the escape hatch for
// what a secret block does not cover (several values in one file, formatting, Vault paths).
// Its text is Nomad's template language, rendered by Nomad in the allocation; dagflow renders
// nothing in it.
type Template struct {
	Data         string `json:"data,omitempty"`
	Source       string `json:"source,omitempty"`
	Destination  string `json:"destination"`
	Env          bool   `json:"env,omitempty"`
	ChangeMode   string `json:"change_mode"` // "noop" unless set
	ChangeSignal string `json:"change_signal,omitempty"`
	Perms        string `json:"perms,omitempty"`
	LeftDelim    string `json:"left_delimiter,omitempty"`
	RightDelim   string `json:"right_delimiter,omitempty"`
	// ErrMissingKey fails the task when the template reads a key that does not exist, instead
	// of rendering "<no value>". On unless set to false.
	ErrMissingKey bool `json:"error_on_missing_key"`
}

// Vault is Nomad's vault block for the task: Nomad logs the task in to Vault with its
// workload identity (the role's JWT auth) and hands it a Vault token.
type Vault struct {
	Role                 string `json:"role,omitempty"`
	Namespace            string `json:"namespace,omitempty"`
	Cluster              string `json:"cluster,omitempty"`
	ChangeMode           string `json:"change_mode,omitempty"`
	ChangeSignal         string `json:"change_signal,omitempty"`
	Env                  *bool  `json:"env,omitempty"`
	DisableFile          bool   `json:"disable_file,omitempty"`
	AllowTokenExpiration bool   `json:"allow_token_expiration,omitempty"`
}

// DefaultTemplateChangeMode is what a template (and a secret) does when its variable changes
// while the try runs: nothing. A try is one run of a program; restarting it halfway, Nomad's
// default, would run part of it twice under the same try.
const DefaultTemplateChangeMode = "noop"

// templateChangeModes and vaultChangeModes are what Nomad takes (structs.Template and
// structs.Vault, v1.11.3).
var (
	templateChangeModes = []string{"noop", "restart", "signal", "script"}
	vaultChangeModes    = []string{"noop", "restart", "signal"}
)

// variablePathPattern is Nomad's rule for variable paths (validVariablePath in
// nomad/structs/variables.go, v1.11.3): URL-safe characters that do not clash with the "@" and
// "." a template uses to name a namespace and region.
var variablePathPattern = regexp.MustCompile(`^[a-zA-Z0-9-_~/]{1,128}$`)

// permsPattern is an octal file mode, as Nomad's template perms take it.
var permsPattern = regexp.MustCompile(`^[0-7]{3,4}$`)

// secretKeyPattern is what a secret's key may look like: the template reads it as a field
// (.KEY), the only form that error_on_missing_key checks.
var secretKeyPattern = identPattern

var (
	secretSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "path", Required: true}, {Name: "key", Required: true}, {Name: "file"}},
	}
	templateSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "data"}, {Name: "source"}, {Name: "destination", Required: true}, {Name: "env"},
			{Name: "change_mode"}, {Name: "change_signal"}, {Name: "perms"},
			{Name: "left_delimiter"}, {Name: "right_delimiter"}, {Name: "error_on_missing_key"},
		},
	}
	vaultSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "role"}, {Name: "namespace"}, {Name: "cluster"}, {Name: "change_mode"},
			{Name: "change_signal"}, {Name: "env"}, {Name: "disable_file"},
			{Name: "allow_token_expiration"}, {Name: "policies"},
		},
	}
)

// secretBlocks are the blocks of a task or defaults block that secrets.go decodes.
var secretBlocks = []hcl.BlockHeaderSchema{
	{Type: "secret", LabelNames: []string{"name"}}, {Type: "template"}, {Type: "vault"},
}

// ValidateVariablePath reports whether p is a path Nomad accepts for a variable, with Nomad's
// own rules (structs.ValidatePath, v1.11.3): up to 128 of [a-zA-Z0-9-_~/], and under the
// reserved top-level "nomad" only nomad/jobs, nomad/sentinel and nomad/job-templates/NAME.
func ValidateVariablePath(p string) error {
	if !variablePathPattern.MatchString(p) {
		return fmt.Errorf("the Nomad variable path %q is invalid: paths are 1 to 128 letters, digits and the characters - _ ~ /", p)
	}
	if strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || strings.Contains(p, "//") {
		return fmt.Errorf("the Nomad variable path %q has an empty part: write it without a leading, trailing or doubled \"/\", such as \"dagflow/etl/db\"", p)
	}
	parts := strings.Split(p, "/")
	if parts[0] != "nomad" {
		return nil
	}
	switch {
	case len(parts) == 1:
		return fmt.Errorf(`"nomad" is a reserved top-level path; use a path of your own such as "dagflow/etl/db"`)
	case parts[1] == "jobs" || parts[1] == "sentinel":
		return nil
	case parts[1] == "job-templates" && len(parts) == 3:
		return nil
	default:
		return fmt.Errorf("under the reserved top-level path \"nomad\" only nomad/jobs and below are variable paths a task can read; use a path of your own such as \"dagflow/etl/db\"")
	}
}

// secrets decodes the secret, template and vault blocks of a task or defaults block over t's.
// A secret replaces one of the same name, and a template one with the same destination, from
// the defaults; a vault block replaces the defaults' vault block whole.
func (e *evaluator) secrets(t *Task, content *hcl.BodyContent, s refScope) {
	seen := map[string]hcl.Range{}
	byName := map[string]Secret{}
	for _, sec := range t.Secrets {
		byName[sec.Name] = sec
	}
	for _, b := range content.Blocks.OfType("secret") {
		name := b.Labels[0]
		if prev, ok := seen[name]; ok {
			e.diags = append(e.diags, duplicate("secret", name, b.DefRange, prev))
			continue
		}
		seen[name] = b.DefRange
		if sec, ok := e.secret(b, s); ok {
			byName[name] = sec
		}
	}
	if len(byName) > 0 {
		t.Secrets = nil
		for _, name := range slices.Sorted(maps.Keys(byName)) {
			t.Secrets = append(t.Secrets, byName[name])
		}
	}

	templates := slices.Clone(t.Templates)
	dests := map[string]hcl.Range{}
	for _, b := range content.Blocks.OfType("template") {
		tmpl, rng, ok := e.template(b, s)
		if !ok {
			continue
		}
		if prev, ok := dests[tmpl.Destination]; ok {
			e.diags = append(e.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Duplicate template destination",
				Detail:  fmt.Sprintf("A template block with destination %q was already declared at %s. Each template renders to a file of its own; merge them or change one destination.", tmpl.Destination, prev),
				Subject: rng.Ptr(),
			})
			continue
		}
		dests[tmpl.Destination] = rng
		templates = slices.DeleteFunc(templates, func(o Template) bool { return o.Destination == tmpl.Destination })
		templates = append(templates, tmpl)
	}
	t.Templates = templates

	for i, b := range content.Blocks.OfType("vault") {
		if i > 0 {
			e.diags = append(e.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Duplicate vault block",
				Detail:  "A task or defaults block has at most one vault block. Merge them.",
				Subject: b.DefRange.Ptr(),
			})
			continue
		}
		if v, ok := e.vault(b, s); ok {
			t.Vault = v
		}
	}
}

// secret decodes one secret block.
func (e *evaluator) secret(b *hcl.Block, s refScope) (Secret, bool) {
	sec := Secret{Name: b.Labels[0]}
	before := len(e.diags)
	if !identPattern.MatchString(sec.Name) {
		e.diags = append(e.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: "Invalid secret name",
			Detail:  fmt.Sprintf("The secret name %q cannot be an environment variable name: start with a letter or \"_\" and use only letters, digits and \"_\", such as \"DB_PASSWORD\".", sec.Name),
			Subject: b.LabelRanges[0].Ptr(),
		})
	}
	content, diags := bodyContent(b.Body, secretSchema)
	e.diags = append(e.diags, diags...)
	at := content.Attributes
	if a := at["path"]; e.str(a, s, &sec.Path) {
		if err := ValidateVariablePath(sec.Path); err != nil {
			e.fail(a, "Invalid variable path", err)
		} else if strings.HasPrefix(sec.Path, "nomad/jobs/") {
			e.diags = append(e.diags, &hcl.Diagnostic{
				Severity: hcl.DiagWarning, Summary: "Variable path of one Nomad job",
				Detail:  fmt.Sprintf("Nomad lets a job read nomad/jobs/JOB_ID by default, but every try of a dagflow task is a new Nomad job, so %q belongs to no try. Use nomad/jobs itself (every job of the namespace can read it) or a path of your own with an ACL policy for the namespace (see docs/language.md).", sec.Path),
				Subject: a.Expr.Range().Ptr(),
			})
		}
	}
	if a := at["key"]; e.str(a, s, &sec.Key) && !secretKeyPattern.MatchString(sec.Key) {
		e.fail(a, "Invalid secret key", fmt.Errorf("the key %q cannot be read as a field of the variable: start with a letter or \"_\" and use only letters, digits and \"_\", or read it with a template block", sec.Key))
	}
	if a := at["file"]; e.str(a, s, &sec.File) {
		if err := checkRelPath(sec.File); err != nil {
			e.fail(a, "Invalid secret file", fmt.Errorf("the file is a name inside the task's secrets directory: %w", err))
		}
	}
	return sec, !e.diags[before:].HasErrors()
}

// template decodes one template block; rng is where its destination is set.
func (e *evaluator) template(b *hcl.Block, s refScope) (Template, hcl.Range, bool) {
	tmpl := Template{ChangeMode: DefaultTemplateChangeMode, ErrMissingKey: true}
	before := len(e.diags)
	content, diags := bodyContent(b.Body, templateSchema)
	e.diags = append(e.diags, diags...)
	at := content.Attributes
	rng := b.DefRange
	dataSet := e.str(at["data"], s, &tmpl.Data)
	sourceSet := e.str(at["source"], s, &tmpl.Source)
	if dataSet == sourceSet && !e.diags[before:].HasErrors() {
		e.diags = append(e.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: "Template needs data or source",
			Detail:  "A template block sets exactly one of data (the template text) and source (a template file in the task's directory, such as one an artifact brought).",
			Subject: b.DefRange.Ptr(),
		})
	}
	if a := at["destination"]; e.str(a, s, &tmpl.Destination) {
		rng = a.Expr.Range()
		if err := checkRelPath(tmpl.Destination); err != nil {
			e.fail(a, "Invalid template destination", fmt.Errorf("the destination is a path inside the task's directory, such as \"secrets/app.conf\": %w", err))
		}
	}
	e.bool(at["env"], s, &tmpl.Env)
	if a := at["change_mode"]; e.str(a, s, &tmpl.ChangeMode) {
		e.oneOf(a, "change_mode", tmpl.ChangeMode, templateChangeModes)
	}
	e.str(at["change_signal"], s, &tmpl.ChangeSignal)
	if a := at["perms"]; e.str(a, s, &tmpl.Perms) && !permsPattern.MatchString(tmpl.Perms) {
		e.fail(a, "Invalid perms", fmt.Errorf("perms is an octal file mode such as \"0600\", not %q", tmpl.Perms))
	}
	e.str(at["left_delimiter"], s, &tmpl.LeftDelim)
	e.str(at["right_delimiter"], s, &tmpl.RightDelim)
	e.bool(at["error_on_missing_key"], s, &tmpl.ErrMissingKey)
	if tmpl.ChangeMode == "signal" && tmpl.ChangeSignal == "" {
		e.diags = append(e.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: "Missing change_signal",
			Detail:  "A template with change_mode = \"signal\" needs the signal to send, such as change_signal = \"SIGHUP\".",
			Subject: b.DefRange.Ptr(),
		})
	}
	return tmpl, rng, !e.diags[before:].HasErrors()
}

// vault decodes one vault block.
func (e *evaluator) vault(b *hcl.Block, s refScope) (*Vault, bool) {
	v := &Vault{}
	before := len(e.diags)
	content, diags := bodyContent(b.Body, vaultSchema)
	e.diags = append(e.diags, diags...)
	at := content.Attributes
	if a := at["policies"]; a != nil {
		e.diags = append(e.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: "Vault policies are not supported",
			Detail:  "Nomad 1.10 and later log tasks in to Vault with their workload identity, and the Vault role decides the policies. Set role to a JWT auth role of Vault instead of policies.",
			Subject: a.NameRange.Ptr(),
		})
	}
	e.str(at["role"], s, &v.Role)
	e.str(at["namespace"], s, &v.Namespace)
	e.str(at["cluster"], s, &v.Cluster)
	if a := at["change_mode"]; e.str(a, s, &v.ChangeMode) {
		e.oneOf(a, "change_mode", v.ChangeMode, vaultChangeModes)
	}
	e.str(at["change_signal"], s, &v.ChangeSignal)
	var env bool
	if e.bool(at["env"], s, &env) {
		v.Env = &env
	}
	e.bool(at["disable_file"], s, &v.DisableFile)
	e.bool(at["allow_token_expiration"], s, &v.AllowTokenExpiration)
	if v.ChangeMode == "signal" && v.ChangeSignal == "" {
		e.diags = append(e.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: "Missing change_signal",
			Detail:  "A vault block with change_mode = \"signal\" needs the signal to send, such as change_signal = \"SIGHUP\".",
			Subject: b.DefRange.Ptr(),
		})
	}
	return v, !e.diags[before:].HasErrors()
}

// checkRelPath reports a path that is not a clean relative path inside a directory.
func checkRelPath(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("it is empty")
	case strings.HasPrefix(p, "/"):
		return fmt.Errorf("%q is absolute; write it relative, without the leading \"/\"", p)
	case path.Clean(p) != p || p == "." || strings.HasPrefix(p, "../") || p == "..":
		return fmt.Errorf("%q is not a clean path inside the directory (no \"..\", \".\" or doubled \"/\")", p)
	case strings.ContainsAny(p, "\x00\n\r"):
		return fmt.Errorf("%q holds a control character", p)
	}
	return nil
}
