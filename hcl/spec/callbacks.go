package spec

import (
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// Callback events: when a callback block's webhooks are called. At DAG level on_failure and
// on_success are about the run, on_retry about every task; at task level all three are about
// the task. DeadlineMissed is the event of a deadline's on_miss.
const (
	EventFailure        = "failure"
	EventSuccess        = "success"
	EventRetry          = "retry"
	EventDeadlineMissed = "deadline_missed"
)

// MaxWebhooks bounds the webhooks and tasks of one callback block: each is one delivery
// record, written in the same Consul transaction as the state change that causes it, and a
// transaction holds at most 64 operations.
const MaxWebhooks = 8

// CallbackTaskName is the name of a callback's task, in messages and its Nomad job.
const CallbackTaskName = "callback"

// Callback is what an on_failure, on_success, on_retry or on_miss block does, once per event:
// call each of its webhooks, at least once (see docs/language.md for the payload), and run each
// of its tasks as a Nomad job, once.
type Callback struct {
	Webhooks []Webhook `json:"webhooks,omitempty"`

	// Tasks run with the event's values as the runtime values callback.* (see
	// CallbackFields), besides run.*, dag.* and params.*; task.* is the callback task itself.
	Tasks []*Task `json:"tasks,omitempty"`
}

// CallbackFields are the runtime values callback.NAME of a callback task.
var CallbackFields = []string{"event", "state", "message", "delivery_id", "task", "try", "url", "payload"}

// Webhook is an HTTP POST of the event's JSON payload to URL.
type Webhook struct {
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers,omitempty"`

	// SecretHeaders are headers whose values the leader reads from a Nomad Variable each time
	// it delivers, so the values are never stored in Consul, logged or shown by the API.
	SecretHeaders []SecretHeader `json:"secret_headers,omitempty"` // sorted by name
}

// SecretHeader is a webhook header whose value is item Key of the Nomad Variable at Path.
type SecretHeader struct {
	Name      string `json:"name"`
	Path      string `json:"path"`
	Key       string `json:"key"`
	Namespace string `json:"namespace,omitempty"` // empty: the server's Nomad namespace
}

// Deadline is when a run (or a task of it) should have finished: After past the run's logical
// date, or past its start when FromStart is set. When it passes first, OnMiss is called once.
type Deadline struct {
	After     Duration  `json:"after"`
	FromStart bool      `json:"from_start,omitempty"`
	OnMiss    *Callback `json:"on_miss,omitempty"`
}

// Due returns when a run with logical date logical that started at started (zero: not yet)
// misses the deadline; zero when that is not known yet (a deadline from the start of a run not
// started).
func (d *Deadline) Due(logical, started time.Time) time.Time {
	if !d.FromStart {
		return logical.Add(time.Duration(d.After))
	}
	if started.IsZero() {
		return time.Time{}
	}
	return started.Add(time.Duration(d.After))
}

// callbackBlocks are the blocks of a dag, task or defaults block that callbacks.go decodes.
var callbackBlocks = []hcl.BlockHeaderSchema{
	{Type: "on_failure"}, {Type: "on_success"}, {Type: "on_retry"}, {Type: "deadline"},
}

var (
	callbackSchema = &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "webhook"}, {Type: "task"}}}
	// callbackTaskSchema is the part of a task's settings a callback task takes.
	callbackTaskSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "command"}, {Name: "args"}, {Name: "image"}, {Name: "driver"}, {Name: "env"}, {Name: "queue"}, {Name: "config"}},
		Blocks:     []hcl.BlockHeaderSchema{{Type: "resources"}},
	}
	webhookSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "url", Required: true}, {Name: "headers"}},
		Blocks:     []hcl.BlockHeaderSchema{{Type: "header", LabelNames: []string{"name"}}},
	}
	headerSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "path", Required: true}, {Name: "key", Required: true}, {Name: "namespace"}},
	}
	deadlineSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "after_logical_date"}, {Name: "after_start"}},
		Blocks:     []hcl.BlockHeaderSchema{{Type: "on_miss"}},
	}
)

// credentialHeaders are header names (lower case) that usually carry a credential.
var credentialHeaders = map[string]bool{
	"authorization": true, "proxy-authorization": true, "cookie": true,
	"x-api-key": true, "api-key": true, "x-auth-token": true,
}

// headerNamePattern is an HTTP header field name (a token of RFC 9110).
var headerNamePattern = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// callbackSet is the callbacks and deadline of a DAG or task, as decoded.
type callbackSet struct {
	onFailure, onSuccess, onRetry **Callback
	deadline                      **Deadline
}

// callbacks decodes the on_failure, on_success, on_retry and deadline blocks in content into
// set; a block replaces the one of the same type the defaults gave.
func (e *evaluator) callbacks(content *hcl.BodyContent, s refScope, set callbackSet) {
	for _, kind := range []struct {
		name string
		out  **Callback
	}{{"on_failure", set.onFailure}, {"on_success", set.onSuccess}, {"on_retry", set.onRetry}} {
		for i, b := range content.Blocks.OfType(kind.name) {
			if i > 0 {
				e.diags = append(e.diags, duplicateBlock(kind.name, b))
				continue
			}
			if cb, ok := e.callback(b, s); ok {
				*kind.out = cb
			}
		}
	}
	for i, b := range content.Blocks.OfType("deadline") {
		if i > 0 {
			e.diags = append(e.diags, duplicateBlock("deadline", b))
			continue
		}
		if d, ok := e.deadline(b, s); ok {
			*set.deadline = d
		}
	}
}

func duplicateBlock(kind string, b *hcl.Block) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagError, Summary: "Duplicate " + kind + " block",
		Detail:  fmt.Sprintf("A dag, task or defaults block has at most one %s block; put every webhook in one.", kind),
		Subject: b.DefRange.Ptr(),
	}
}

// callback decodes one callback block.
func (e *evaluator) callback(b *hcl.Block, s refScope) (*Callback, bool) {
	before := len(e.diags)
	content, diags := bodyContent(b.Body, callbackSchema)
	e.diags = append(e.diags, diags...)
	cb := &Callback{}
	hooks, tasks := content.Blocks.OfType("webhook"), content.Blocks.OfType("task")
	if len(hooks)+len(tasks) == 0 && !diags.HasErrors() {
		e.diags = append(e.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: "Callback without webhook or task",
			Detail:  fmt.Sprintf("The %s block calls nothing. Add a webhook block with the url to call or a task block to run, or remove the block.", b.Type),
			Subject: b.DefRange.Ptr(),
		})
	}
	if all := append(slices.Clone(hooks), tasks...); len(all) > MaxWebhooks {
		e.diags = append(e.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: "Too many callbacks",
			Detail:  fmt.Sprintf("The %s block has %d webhook and task blocks; at most %d are allowed, so each event's deliveries are recorded in one Consul transaction. Send to a receiver that fans out instead.", b.Type, len(all), MaxWebhooks),
			Subject: all[MaxWebhooks].DefRange.Ptr(),
		})
	}
	for _, hb := range hooks {
		if w, ok := e.webhook(hb, s); ok {
			cb.Webhooks = append(cb.Webhooks, w)
		}
	}
	for _, tb := range tasks {
		if t, ok := e.callbackTask(tb, s); ok {
			cb.Tasks = append(cb.Tasks, t)
		}
	}
	return cb, !e.diags[before:].HasErrors()
}

// webhook decodes one webhook block.
func (e *evaluator) webhook(b *hcl.Block, s refScope) (Webhook, bool) {
	before := len(e.diags)
	content, diags := bodyContent(b.Body, webhookSchema)
	e.diags = append(e.diags, diags...)
	w := Webhook{}
	at := content.Attributes
	if a := at["url"]; e.str(a, s, &w.URL) {
		if err := checkWebhookURL(w.URL); err != nil {
			e.fail(a, "Invalid webhook url", err)
		}
	}
	seen := map[string]hcl.Range{}
	if a := at["headers"]; a != nil {
		if v, ok := e.convertTo(a, s, cty.Map(cty.String)); ok {
			w.Headers = map[string]string{}
			values := v.AsValueMap()
			for _, name := range slices.Sorted(maps.Keys(values)) {
				el := values[name]
				if err := checkHeader(name, el.AsString()); err != nil {
					e.fail(a, "Invalid webhook header", err)
					continue
				}
				w.Headers[name] = el.AsString()
				seen[strings.ToLower(name)] = a.Expr.Range()
				if credentialHeaders[strings.ToLower(name)] {
					e.diags = append(e.diags, &hcl.Diagnostic{
						Severity: hcl.DiagWarning, Summary: "Credential in a plain header",
						Detail:  fmt.Sprintf("The %s header is set in headers, so its value is stored with the DAG and its deliveries and shown by the API. Read it from a Nomad Variable with a header %q block instead.", name, name),
						Subject: a.Expr.Range().Ptr(),
					})
				}
			}
		}
	}
	byName := map[string]SecretHeader{}
	for _, hb := range content.Blocks.OfType("header") {
		name := hb.Labels[0]
		if err := checkHeader(name, ""); err != nil {
			e.diags = append(e.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Invalid webhook header", Detail: sentence(err.Error()),
				Subject: hb.LabelRanges[0].Ptr(),
			})
			continue
		}
		if prev, ok := seen[strings.ToLower(name)]; ok {
			e.diags = append(e.diags, duplicate("header", name, hb.DefRange, prev))
			continue
		}
		seen[strings.ToLower(name)] = hb.DefRange
		hc, hdiags := bodyContent(hb.Body, headerSchema)
		e.diags = append(e.diags, hdiags...)
		h := SecretHeader{Name: name}
		if a := hc.Attributes["path"]; e.str(a, s, &h.Path) {
			if err := ValidateVariablePath(h.Path); err != nil {
				e.fail(a, "Invalid variable path", err)
			}
		}
		if a := hc.Attributes["key"]; e.str(a, s, &h.Key) && h.Key == "" {
			e.fail(a, "Invalid header key", fmt.Errorf("the key names the item of the Nomad Variable that holds the header's value, and cannot be empty"))
		}
		e.str(hc.Attributes["namespace"], s, &h.Namespace)
		byName[name] = h
	}
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		w.SecretHeaders = append(w.SecretHeaders, byName[name])
	}
	return w, !e.diags[before:].HasErrors()
}

// callbackTask decodes the task block of a callback: a task of its own, with the defaults of
// a task without a defaults block, whose strings may use callback.* too.
func (e *evaluator) callbackTask(b *hcl.Block, s refScope) (*Task, bool) {
	before := len(e.diags)
	content, diags := bodyContent(b.Body, callbackTaskSchema)
	e.diags = append(e.diags, diags...)
	t := &Task{
		Name: CallbackTaskName, TriggerRule: DefaultTriggerRule, Queue: DefaultQueue, Driver: DefaultDriver,
		Resources:  Resources{CPU: DefaultCPU, MemoryMB: DefaultMemoryMB},
		RetryDelay: Duration(DefaultRetryDelay), Priority: DefaultPriority, DeclRange: b.DefRange,
	}
	s.callback, s.each, s.mapped, s.outputs = true, false, false, nil
	e.settings(t, content, s, true)
	return t, !e.diags[before:].HasErrors()
}

// checkCallbackQueues reports callback tasks of d that use a queue no queue block declares.
func checkCallbackQueues(d *DAG, queues map[string]*Queue) hcl.Diagnostics {
	var diags hcl.Diagnostics
	cbs := []*Callback{d.OnFailure, d.OnSuccess, d.OnRetry}
	if d.Deadline != nil {
		cbs = append(cbs, d.Deadline.OnMiss)
	}
	for _, t := range d.Tasks {
		cbs = append(cbs, t.OnFailure, t.OnSuccess, t.OnRetry)
		if t.Deadline != nil {
			cbs = append(cbs, t.Deadline.OnMiss)
		}
	}
	seen := map[*Task]bool{}
	for _, cb := range cbs {
		if cb == nil {
			continue
		}
		for _, t := range cb.Tasks {
			if _, ok := queues[t.Queue]; ok || seen[t] {
				continue
			}
			seen[t] = true
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Unknown queue",
				Detail:  fmt.Sprintf("A callback task of DAG %q uses queue %q, which no queue block declares.%s Declare it with a queue block, or use the %q queue.", d.Name, t.Queue, didYouMean(t.Queue, slices.Sorted(maps.Keys(queues))), DefaultQueue),
				Subject: t.DeclRange.Ptr(),
			})
		}
	}
	return diags
}

// deadline decodes one deadline block.
func (e *evaluator) deadline(b *hcl.Block, s refScope) (*Deadline, bool) {
	before := len(e.diags)
	content, diags := bodyContent(b.Body, deadlineSchema)
	e.diags = append(e.diags, diags...)
	d := &Deadline{}
	logical, start := content.Attributes["after_logical_date"], content.Attributes["after_start"]
	switch {
	case (logical == nil) == (start == nil):
		e.diags = append(e.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: "Deadline needs one reference",
			Detail:  "A deadline block sets exactly one of after_logical_date (the run must be done this long after its logical date) and after_start (this long after the run started), such as after_start = \"1h\".",
			Subject: b.DefRange.Ptr(),
		})
	case logical != nil:
		e.positiveDuration(logical, s, &d.After)
	default:
		d.FromStart = true
		e.positiveDuration(start, s, &d.After)
	}
	for i, mb := range content.Blocks.OfType("on_miss") {
		if i > 0 {
			e.diags = append(e.diags, duplicateBlock("on_miss", mb))
			continue
		}
		if cb, ok := e.callback(mb, s); ok {
			d.OnMiss = cb
		}
	}
	return d, !e.diags[before:].HasErrors()
}

// positiveDuration is duration, refusing zero.
func (e *evaluator) positiveDuration(a *hcl.Attribute, s refScope, out *Duration) {
	if e.duration(a, s, out) && *out == 0 {
		e.fail(a, "Invalid duration", fmt.Errorf("the value of %s must be longer than zero, such as \"30m\"", a.Name))
	}
}

// checkWebhookURL reports a URL the leader could not POST to.
func checkWebhookURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q is not an http or https URL; write it in full, such as \"https://hooks.example.com/dagflow\"", raw)
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host; write it in full, such as \"https://hooks.example.com/dagflow\"", raw)
	}
	if u.User != nil {
		return fmt.Errorf("%q holds credentials, which would be stored and shown with the DAG; send them in a header block that reads them from a Nomad Variable", u.Redacted())
	}
	return nil
}

// checkHeader reports a header name or value that HTTP does not allow, or a name dagflow sets
// itself.
func checkHeader(name, value string) error {
	if !headerNamePattern.MatchString(name) {
		return fmt.Errorf("%q is not an HTTP header name: use letters, digits and \"-\", such as \"X-Team\"", name)
	}
	switch strings.ToLower(name) {
	case "content-type", "content-length", "host", "idempotency-key", "x-dagflow-delivery", "x-dagflow-event":
		return fmt.Errorf("the %s header is one dagflow sets itself; choose another name", name)
	}
	if strings.ContainsAny(value, "\r\n\x00") {
		return fmt.Errorf("the value of header %q holds a line break or NUL, which HTTP does not allow", name)
	}
	return nil
}
