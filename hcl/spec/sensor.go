package spec

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// Defaults and bounds of a sensor block. The timeout is Airflow's (7 days), so a sensor ported
// from it gives up at the same moment; the poke interval is Airflow's too.
const (
	DefaultPokeInterval  = 60 * time.Second
	DefaultSensorTimeout = 7 * 24 * time.Hour
	MinPokeInterval      = time.Second // the engine's tick: pokes are not noticed more often
)

// Sensor kinds: the condition a sensor waits for, one block each.
const (
	SensorConsulKey     = "consul_key"
	SensorHTTP          = "http"
	SensorNomadVariable = "nomad_variable"
	SensorConsulService = "consul_service"
	SensorDAGRun        = "dag_run"
	SensorCommand       = "command"
)

// NotYetExitCode is the exit code by which a command sensor's job says its condition does not
// hold yet: EX_TEMPFAIL of sysexits.h, "a temporary failure; try again later". Exit code 0
// says it holds; any other is a failure, retried as retries allows.
const NotYetExitCode = 75

// SensorKinds lists the condition blocks a sensor may have, exactly one of them.
var SensorKinds = []string{SensorConsulKey, SensorHTTP, SensorNomadVariable, SensorConsulService, SensorDAGRun, SensorCommand}

// Sensor is set on a task declared with a sensor block: the leader evaluates its condition
// itself, every PokeInterval, until it holds (the task succeeds) or Timeout has passed since
// the wait started (it fails, or is skipped with SoftFail). A sensor runs no Nomad job, except
// a command sensor (Command): each of its pokes is a try of the task's own job settings, and
// exit code NotYetExitCode says "not yet", so the next poke is a new try after PokeInterval.
//
// Exactly one of the condition fields (or Command) is set. Their strings may hold runtime values
// (${run.logical_date}), which Render fills in.
type Sensor struct {
	PokeInterval Duration `json:"poke_interval"`
	Timeout      Duration `json:"timeout"`
	SoftFail     bool     `json:"soft_fail,omitempty"`

	ConsulKey     *ConsulKeySensor     `json:"consul_key,omitempty"`
	HTTP          *HTTPSensor          `json:"http,omitempty"`
	NomadVariable *NomadVariableSensor `json:"nomad_variable,omitempty"`
	ConsulService *ConsulServiceSensor `json:"consul_service,omitempty"`
	DAGRun        *DAGRunSensor        `json:"dag_run,omitempty"`
	Command       bool                 `json:"command,omitempty"`
}

// Kind returns the sensor's kind: the name of its condition block.
func (s *Sensor) Kind() string {
	switch {
	case s.ConsulKey != nil:
		return SensorConsulKey
	case s.HTTP != nil:
		return SensorHTTP
	case s.NomadVariable != nil:
		return SensorNomadVariable
	case s.ConsulService != nil:
		return SensorConsulService
	case s.DAGRun != nil:
		return SensorDAGRun
	case s.Command:
		return SensorCommand
	}
	return ""
}

// ConsulKeySensor waits for a Consul KV key to exist, or, when Value is set, to hold exactly it.
type ConsulKeySensor struct {
	Key   string  `json:"key"`
	Value *string `json:"value,omitempty"`
}

// HTTPSensor waits for a GET of URL to answer with a 2xx status.
type HTTPSensor struct {
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers,omitempty"`
}

// NomadVariableSensor waits for a Nomad Variable to exist, in Namespace (empty: the
// engine's Nomad client's).
type NomadVariableSensor struct {
	Path      string `json:"path"`
	Namespace string `json:"namespace,omitempty"`
}

// ConsulServiceSensor waits for a Consul service to have at least one instance whose checks
// all pass.
type ConsulServiceSensor struct {
	Name string `json:"name"`
}

// DAGRunSensor waits for the run of DAG with the same logical date as the sensor's run to
// have succeeded, or, with Task, for that task instance of it to have.
type DAGRunSensor struct {
	DAG  string `json:"dag"`
	Task string `json:"task,omitempty"`
}

var sensorSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "depends_on"}, {Name: "trigger_rule"}, {Name: "poke_interval"}, {Name: "timeout"},
		{Name: "soft_fail"},
	},
	Blocks: []hcl.BlockHeaderSchema{
		{Type: SensorConsulKey}, {Type: SensorHTTP}, {Type: SensorNomadVariable},
		{Type: SensorConsulService}, {Type: SensorDAGRun}, {Type: SensorCommand},
	},
}

var sensorBodySchemas = map[string]*hcl.BodySchema{
	SensorConsulKey:     {Attributes: []hcl.AttributeSchema{{Name: "key", Required: true}, {Name: "value"}}},
	SensorHTTP:          {Attributes: []hcl.AttributeSchema{{Name: "url", Required: true}, {Name: "headers"}}},
	SensorNomadVariable: {Attributes: []hcl.AttributeSchema{{Name: "path", Required: true}, {Name: "namespace"}}},
	SensorConsulService: {Attributes: []hcl.AttributeSchema{{Name: "name", Required: true}}},
	SensorDAGRun:        {Attributes: []hcl.AttributeSchema{{Name: "dag", Required: true}, {Name: "task"}}},
}

// decodeSensor decodes a sensor block into its one task instance. The defaults block does not
// apply to it: its settings are those of a Nomad job, which a sensor has none of; except to a
// command sensor, whose command block takes a task's job settings over base, the DAG's
// defaults.
func (f *fileScope) decodeSensor(b *hcl.Block, base *Task, params []string) (*taskBlock, hcl.Diagnostics) {
	name := b.Labels[0]
	tb := &taskBlock{name: name}
	content, diags := bodyContent(b.Body, sensorSchema)
	s := &Sensor{PokeInterval: Duration(DefaultPokeInterval), Timeout: Duration(DefaultSensorTimeout)}
	t := &Task{Name: name, TriggerRule: DefaultTriggerRule, Sensor: s, DeclRange: b.DefRange}
	ev := &evaluator{file: f, ctx: f.evalContext(nil, params...)}
	scope := refScope{params: params}
	at := content.Attributes
	if a := at["trigger_rule"]; ev.str(a, scope, &t.TriggerRule) {
		ev.oneOf(a, "trigger_rule", t.TriggerRule, TriggerRules)
	}
	if a := at["poke_interval"]; ev.duration(a, scope, &s.PokeInterval) && time.Duration(s.PokeInterval) < MinPokeInterval {
		ev.fail(a, "Poke interval too short", fmt.Errorf("the poke_interval of sensor %q is %s; it must be at least %s", name, time.Duration(s.PokeInterval), MinPokeInterval))
	}
	if a := at["timeout"]; ev.duration(a, scope, &s.Timeout) && s.Timeout == 0 {
		ev.fail(a, "Sensor without timeout", fmt.Errorf("the timeout of sensor %q is 0; give it how long to wait at most, such as \"6h\", or leave it out for %s", name, DefaultSensorTimeout))
	}
	ev.bool(at["soft_fail"], scope, &s.SoftFail)
	if a := at["depends_on"]; a != nil {
		tb.deps = [][]dependency{ev.dependencies(a, scope)}
	}

	var conds hcl.Blocks
	for _, kind := range SensorKinds {
		conds = append(conds, content.Blocks.OfType(kind)...)
	}
	switch {
	case len(conds) == 0:
		ev.diags = append(ev.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: "Sensor without condition",
			Detail:  fmt.Sprintf("Sensor %q needs one block saying what it waits for: %s.", name, quoteList(SensorKinds)),
			Subject: b.DefRange.Ptr(),
		})
	case len(conds) > 1:
		ev.diags = append(ev.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: "Sensor with several conditions",
			Detail:  fmt.Sprintf("Sensor %q has a %s block and a %s block, but a sensor waits for one condition. Split it into two sensors and make the downstream task depend on both.", name, conds[0].Type, conds[1].Type),
			Subject: conds[1].DefRange.Ptr(),
		})
	case conds[0].Type == SensorCommand:
		commandSensor(ev, t, base, conds[0], params)
	default:
		ev.condition(s, conds[0], refScope{params: params, runtime: true})
	}
	diags = append(diags, ev.diags...)
	tb.instances = []*Task{t}
	return tb, diags
}

// commandSensor gives sensor task t the job settings of its command block c, over base:
// command, args, image, driver, env, queue, resources, retries and the rest a defaults block
// takes.
func commandSensor(ev *evaluator, t, base *Task, c *hcl.Block, params []string) {
	content, diags := bodyContent(c.Body, defaultsSchema)
	ev.diags = append(ev.diags, diags...)
	out := *base
	out.Name, out.TriggerRule, out.Sensor, out.DeclRange = t.Name, t.TriggerRule, t.Sensor, t.DeclRange
	out.Env = copyMap(base.Env)
	out.Args = append([]string(nil), base.Args...)
	out.Sensor.Command = true
	ev.settings(&out, content, refScope{params: params}, true)
	*t = out
}

// condition decodes the condition block c of sensor s. Its strings are templates with the
// runtime values of the sensor's run.
func (e *evaluator) condition(s *Sensor, c *hcl.Block, scope refScope) {
	content, diags := bodyContent(c.Body, sensorBodySchemas[c.Type])
	e.diags = append(e.diags, diags...)
	if diags.HasErrors() {
		return
	}
	at := content.Attributes
	switch c.Type {
	case SensorConsulKey:
		k := &ConsulKeySensor{}
		if a := at["key"]; e.str(a, scope, &k.Key) && (k.Key == "" || strings.HasPrefix(k.Key, "/")) {
			e.fail(a, "Invalid Consul key", fmt.Errorf("the key %q is not a Consul KV key: give its path without a leading \"/\", such as \"jobs/orders/ready\"", k.Key))
		}
		if a := at["value"]; a != nil {
			var v string
			if e.str(a, scope, &v) {
				k.Value = &v
			}
		}
		s.ConsulKey = k
	case SensorHTTP:
		h := &HTTPSensor{}
		if a := at["url"]; e.str(a, scope, &h.URL) {
			// A runtime value may stand for the host, so only a URL without one is checked whole.
			if u, err := url.Parse(h.URL); !strings.Contains(h.URL, "${") && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
				e.fail(a, "Invalid URL", fmt.Errorf("%q is not an http or https URL such as \"https://api.example.com/ready\"", h.URL))
			}
		}
		if a := at["headers"]; a != nil {
			if v, ok := e.convertTo(a, scope, cty.Map(cty.String)); ok {
				h.Headers = map[string]string{}
				for k, el := range v.AsValueMap() {
					text, err := templateString(el.AsString())
					if err != nil {
						e.fail(a, "Runtime value used in a function", err)
						continue
					}
					h.Headers[k] = text
				}
			}
		}
		s.HTTP = h
	case SensorNomadVariable:
		n := &NomadVariableSensor{}
		if a := at["path"]; e.str(a, scope, &n.Path) && (n.Path == "" || strings.HasPrefix(n.Path, "/")) {
			e.fail(a, "Invalid variable path", fmt.Errorf("the path %q is not a Nomad Variable path: give it without a leading \"/\", such as \"nomad/jobs/orders\"", n.Path))
		}
		e.str(at["namespace"], scope, &n.Namespace)
		s.NomadVariable = n
	case SensorConsulService:
		c := &ConsulServiceSensor{}
		e.str(at["name"], scope, &c.Name)
		s.ConsulService = c
	case SensorDAGRun:
		d := &DAGRunSensor{}
		static := refScope{params: scope.params}
		if a := at["dag"]; e.str(a, static, &d.DAG) {
			if diag := checkName("dag", d.DAG, a.Expr.Range()); diag != nil {
				e.diags = append(e.diags, diag)
			}
		}
		if a := at["task"]; e.str(a, static, &d.Task) {
			if diag := checkName("task", d.Task, a.Expr.Range()); diag != nil {
				e.diags = append(e.diags, diag)
			}
		}
		s.DAGRun = d
	}
}

// renderSensor returns a copy of s with the runtime values of one run filled into its strings.
func renderSensor(s *Sensor, render func(field, tmpl string) (string, error)) (*Sensor, error) {
	if s == nil {
		return nil, nil
	}
	out := *s
	var err error
	switch {
	case s.ConsulKey != nil:
		k := *s.ConsulKey
		if k.Key, err = render("consul_key.key", k.Key); err != nil {
			return nil, err
		}
		if k.Value != nil {
			v, err := render("consul_key.value", *k.Value)
			if err != nil {
				return nil, err
			}
			k.Value = &v
		}
		out.ConsulKey = &k
	case s.HTTP != nil:
		h := *s.HTTP
		if h.URL, err = render("http.url", h.URL); err != nil {
			return nil, err
		}
		if h.Headers != nil {
			h.Headers = make(map[string]string, len(s.HTTP.Headers))
			for k, v := range s.HTTP.Headers {
				if h.Headers[k], err = render("http.headers "+k, v); err != nil {
					return nil, err
				}
			}
		}
		out.HTTP = &h
	case s.NomadVariable != nil:
		n := *s.NomadVariable
		if n.Path, err = render("nomad_variable.path", n.Path); err != nil {
			return nil, err
		}
		if n.Namespace, err = render("nomad_variable.namespace", n.Namespace); err != nil {
			return nil, err
		}
		out.NomadVariable = &n
	case s.ConsulService != nil:
		c := *s.ConsulService
		if c.Name, err = render("consul_service.name", c.Name); err != nil {
			return nil, err
		}
		out.ConsulService = &c
	}
	return &out, nil
}
