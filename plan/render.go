package plan

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dagflow/dagflow/hcl/spec"
	"github.com/dagflow/dagflow/schedule"
)

// ANSI colors of the change signs, Terraform's.
const (
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiRed    = "\x1b[31m"
	ansiReset  = "\x1b[0m"
)

// Render writes the human view of p in Terraform's grammar: one block per change ("+" create,
// "~" update in place, "-" destroy), the catch-up runs applying would start, warnings, and the
// "Plan: 1 to add, 1 to change, 1 to destroy." summary. With color, the signs are green,
// yellow and red.
//
// A created DAG shows its main attributes (description, schedule, timezone, catchup, paused,
// params and task names); a created queue the attributes it sets; an updated one every changed
// attribute, grouped by task and param; a deleted one only its name.
func Render(w io.Writer, p *Plan, color bool) error {
	bw := bufio.NewWriter(w)
	r := &renderer{w: bw, color: color}
	if p.Empty() {
		r.printf("No changes. Your DAGs match the applied configuration.\n")
	} else {
		r.printf("dagflow will perform the following actions:\n")
		for _, c := range p.Changes {
			r.printf("\n")
			r.change(p, c)
		}
	}
	if len(p.Backlogs) > 0 {
		r.printf("\nCatch-up runs on apply:\n")
		for _, b := range p.Backlogs {
			r.printf("  dag.%s: %s\n", b.DAG, describeBacklog(b))
		}
	}
	if len(p.Assets) > 0 {
		r.printf("\nAssets:\n")
		for _, a := range p.Assets {
			r.printf("  %s: produced by %s; consumed by %s\n", a.Name, listOrNone(a.Producers), listOrNone(a.Consumers))
		}
	}
	if len(p.Warnings) > 0 {
		r.printf("\nWarnings:\n")
		for _, warning := range p.Warnings {
			r.printf("  - %s\n", warning)
		}
	}
	if !p.Empty() {
		add, change, destroy := p.Summary()
		r.printf("\nPlan: %d to add, %d to change, %d to destroy.\n", add, change, destroy)
	}
	if r.err != nil {
		return fmt.Errorf("render plan: %w", r.err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("render plan: %w", err)
	}
	return nil
}

// describeBacklog is one line of "Catch-up runs on apply:". Logical dates are interval starts,
// as in Airflow, in the DAG's timezone (so its offset shows).
func describeBacklog(b Backlog) string {
	runs := fmt.Sprintf("%d runs", b.Count)
	switch {
	case b.Truncated:
		runs = fmt.Sprintf("more than %d runs", b.Count)
	case b.Count == 1:
		runs = "1 run"
	}
	s := fmt.Sprintf("%s (catchup = %s), ", runs, hclString(b.Catchup))
	if b.Count == 1 {
		return s + "logical date " + b.First.Start.Format(time.RFC3339)
	}
	return s + fmt.Sprintf("logical dates %s to %s", b.First.Start.Format(time.RFC3339), b.Last.Start.Format(time.RFC3339))
}

// renderer writes text and keeps the first write error, so the printing code reads straight.
type renderer struct {
	w     io.Writer
	color bool
	err   error
}

func (r *renderer) printf(format string, args ...any) {
	if r.err == nil {
		_, r.err = fmt.Fprintf(r.w, format, args...)
	}
}

func (r *renderer) sign(s string) string {
	if !r.color {
		return s
	}
	switch s {
	case "+":
		return ansiGreen + s + ansiReset
	case "~":
		return ansiYellow + s + ansiReset
	case "-":
		return ansiRed + s + ansiReset
	}
	return s
}

var actionWords = map[Action]string{
	ActionCreate: "will be created",
	ActionUpdate: "will be updated in place",
	ActionDelete: "will be destroyed",
}

var actionSigns = map[Action]string{ActionCreate: "+", ActionUpdate: "~", ActionDelete: "-"}

func (r *renderer) change(p *Plan, c Change) {
	r.printf("  # %s.%s %s\n", c.Kind, c.Name, actionWords[c.Action])
	b := &block{sign: actionSigns[c.Action], header: fmt.Sprintf("%s %s", c.Kind, hclString(c.Name))}
	switch c.Action {
	case ActionCreate:
		b.attrs = createAttrs(p.Local, c)
		if len(b.attrs) == 0 {
			b.bare = true
		}
	case ActionUpdate:
		for _, a := range c.Attrs {
			b.add(c.Kind, a)
		}
	default:
		b.bare = true
	}
	r.block(b, "  ")
}

// block is one rendered block: `~ dag "reports" {`, its attribute lines, nested blocks, `}`.
type block struct {
	sign      string
	header    string
	attrs     []attr
	blocks    []*block
	bare      bool // just the header line: a deleted definition
	collapsed bool // `+ task "x" { ... }`: a task or param added or removed as a whole
}

type attr struct {
	sign, key, value string
}

// add places one AttrChange in the tree below b: tasks and params become labeled blocks,
// nested objects plain blocks, the last path element an attribute line.
func (b *block) add(kind string, a AttrChange) {
	path := a.Path
	if len(path) == 0 {
		return
	}
	sign := "~"
	switch {
	case a.Before == nil:
		sign = "+"
	case a.After == nil:
		sign = "-"
	}
	cur := b
	if kind == KindDAG && len(path) >= 2 && (path[0] == "task" || path[0] == "param") {
		header := path[0] + " " + hclString(path[1])
		if len(path) == 2 {
			cur.blocks = append(cur.blocks, &block{sign: sign, header: header, collapsed: true})
			return
		}
		cur = cur.child(header)
		path = path[2:]
	}
	for len(path) > 1 {
		cur = cur.child(hclKey(path[0]))
		path = path[1:]
	}
	var value string
	switch sign {
	case "+":
		value = hclValue(a.After)
	case "-":
		value = hclValue(a.Before) + " -> null"
	default:
		value = hclValue(a.Before) + " -> " + hclValue(a.After)
	}
	cur.attrs = append(cur.attrs, attr{sign: sign, key: hclKey(path[0]), value: value})
}

// child returns the nested block of b updated in place with this header, adding it if needed.
func (b *block) child(header string) *block {
	for _, c := range b.blocks {
		if c.header == header && c.sign == "~" && !c.collapsed {
			return c
		}
	}
	c := &block{sign: "~", header: header}
	b.blocks = append(b.blocks, c)
	return c
}

// block writes b at indent: attribute lines first, their "=" aligned, then nested blocks, as
// Terraform does.
func (r *renderer) block(b *block, indent string) {
	switch {
	case b.bare:
		r.printf("%s%s %s\n", indent, r.sign(b.sign), b.header)
		return
	case b.collapsed:
		r.printf("%s%s %s { ... }\n", indent, r.sign(b.sign), b.header)
		return
	}
	r.printf("%s%s %s {\n", indent, r.sign(b.sign), b.header)
	inner := indent + "    "
	width := 0
	for _, a := range b.attrs {
		width = max(width, len(a.key))
	}
	for _, a := range b.attrs {
		r.printf("%s%s %-*s = %s\n", inner, r.sign(a.sign), width, a.key, a.value)
	}
	for _, c := range b.blocks {
		r.block(c, inner)
	}
	r.printf("%s  }\n", indent)
}

// createAttrs are the lines shown for a created definition: the attributes a reviewer needs
// to recognize it, not every default the parser filled in.
func createAttrs(local *spec.Config, c Change) []attr {
	var m map[string]any
	var keys []string
	switch c.Kind {
	case KindDAG:
		if local == nil {
			return nil
		}
		d := findDAG(local, c.Name)
		if d == nil {
			return nil
		}
		m = toMap(d)
		m["params"] = namesOf(m["params"])
		if mapped := mappedTasks(d); len(mapped) > 0 {
			m["mapped"] = mapped
		}
		m["tasks"] = namesOf(m["tasks"])
		if m["paused"] == false {
			delete(m, "paused") // only worth a line when the DAG will not start running
		}
		keys = []string{"description", "schedule", "timezone", "catchup", "paused", "params", "tasks", "mapped"}
	case KindQueue:
		if local == nil {
			return nil
		}
		for _, q := range local.Queues {
			if q != nil && q.Name == c.Name {
				m = toMap(q)
			}
		}
		keys = []string{"description", "namespace", "node_pool", "datacenters", "constraints", "max_running", "volumes"}
	}
	var attrs []attr
	for _, k := range keys {
		v, ok := m[k]
		if !ok || v == nil {
			continue
		}
		if list, isList := v.([]any); isList && len(list) == 0 && k == "params" {
			continue
		}
		attrs = append(attrs, attr{sign: "+", key: k, value: hclValue(v)})
	}
	return attrs
}

// mappedTasks returns what each task of d mapped over an upstream's outputs maps over: its
// instances are known only at run time, so plan names the collection instead.
func mappedTasks(d *spec.DAG) map[string]any {
	out := map[string]any{}
	for _, t := range d.Tasks {
		if t.MapOver != nil {
			out[t.Name] = t.MapOver.String()
		}
	}
	return out
}

// namesOf turns a JSON list of named objects into the list of their names.
func namesOf(v any) []any {
	list, _ := v.([]any)
	out := make([]any, 0, len(list))
	for _, e := range list {
		if obj, ok := e.(map[string]any); ok {
			out = append(out, obj["name"])
		}
	}
	return out
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)

// hclKey is an attribute or map key as HCL writes it: bare when it is an identifier.
func hclKey(k string) string {
	if identRE.MatchString(k) {
		return k
	}
	return hclString(k)
}

// hclValue writes a JSON-decoded value as an HCL literal.
func hclValue(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		return hclString(v)
	case bool:
		return strconv.FormatBool(v)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case json.Number:
		return v.String()
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = hclValue(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		if len(v) == 0 {
			return "{}"
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = hclKey(k) + " = " + hclValue(v[k])
		}
		return "{ " + strings.Join(parts, ", ") + " }"
	default:
		return fmt.Sprint(v)
	}
}

// hclString quotes s as an HCL string literal. Template sequences are left alone: task strings
// and constraints are stored in template form already ("${run.id}" a runtime value, "$${HOME}"
// a literal), so they print as the user wrote them.
func hclString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\u%04X`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// FormatVersion is the "format_version" of RenderJSON's output. It changes in its major part
// only when a field is removed or changes meaning; new fields may appear within a version.
const FormatVersion = "1"

type jsonPlan struct {
	FormatVersion string        `json:"format_version"`
	Changes       []jsonChange  `json:"changes"`
	CatchUp       []jsonBacklog `json:"catch_up"`
	Warnings      []string      `json:"warnings"`
	Assets        []jsonAsset   `json:"assets"`
	Summary       jsonSummary   `json:"summary"`
	CatalogIndex  uint64        `json:"catalog_index"`
}

type jsonChange struct {
	Kind       string     `json:"kind"`
	Name       string     `json:"name"`
	Action     Action     `json:"action"`
	Attributes []jsonAttr `json:"attributes"`
}

type jsonAttr struct {
	Path   []string `json:"path"`
	Before any      `json:"before"`
	After  any      `json:"after"`
}

type jsonBacklog struct {
	DAG       string       `json:"dag"`
	Catchup   string       `json:"catchup"`
	Count     int          `json:"count"`
	Truncated bool         `json:"truncated"`
	First     jsonInterval `json:"first"`
	Last      jsonInterval `json:"last"`
}

type jsonInterval struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

type jsonAsset struct {
	Name      string   `json:"name"`
	Producers []string `json:"producers"`
	Consumers []string `json:"consumers"`
}

type jsonSummary struct {
	Add     int `json:"add"`
	Change  int `json:"change"`
	Destroy int `json:"destroy"`
}

// RenderJSON writes the machine view of p: one JSON object with "format_version" "1",
// "changes" (kind, name, action, attributes: path, before, after), "catch_up" (dag, catchup,
// count, truncated, first and last intervals), "warnings", "assets" (name, producers as
// DAG.TASK, consumers), "summary" (add, change, destroy) and
// "catalog_index", the catalog index an apply of this plan checks. Lists are [] when empty,
// never null.
func RenderJSON(w io.Writer, p *Plan) error {
	out := jsonPlan{
		FormatVersion: FormatVersion,
		Changes:       []jsonChange{},
		CatchUp:       []jsonBacklog{},
		Warnings:      append([]string{}, p.Warnings...),
		Assets:        []jsonAsset{},
	}
	for _, a := range p.Assets {
		out.Assets = append(out.Assets, jsonAsset{Name: a.Name, Producers: append([]string{}, a.Producers...), Consumers: append([]string{}, a.Consumers...)})
	}
	for _, c := range p.Changes {
		jc := jsonChange{Kind: c.Kind, Name: c.Name, Action: c.Action, Attributes: []jsonAttr{}}
		for _, a := range c.Attrs {
			jc.Attributes = append(jc.Attributes, jsonAttr{Path: a.Path, Before: a.Before, After: a.After})
		}
		out.Changes = append(out.Changes, jc)
	}
	for _, b := range p.Backlogs {
		out.CatchUp = append(out.CatchUp, jsonBacklog{
			DAG: b.DAG, Catchup: b.Catchup, Count: b.Count, Truncated: b.Truncated,
			First: interval(b.First), Last: interval(b.Last),
		})
	}
	out.Summary.Add, out.Summary.Change, out.Summary.Destroy = p.Summary()
	if p.Base != nil {
		out.CatalogIndex = p.Base.Index
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // commands hold <, > and &, which should read as written
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("render plan as json: %w", err)
	}
	return nil
}

// listOrNone joins names for the Assets lines, "nothing" for none.
func listOrNone(names []string) string {
	if len(names) == 0 {
		return "nothing"
	}
	return strings.Join(names, ", ")
}

func interval(iv schedule.Interval) jsonInterval { return jsonInterval{Start: iv.Start, End: iv.End} }
