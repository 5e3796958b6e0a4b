package spec

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// ParamError is one param value a trigger gave that the DAG does not accept.
type ParamError struct {
	Param   string `json:"param"`
	Message string `json:"message"`
}

// ParamErrors lists every param value a trigger gave that the DAG does not accept, one per
// param, sorted by name.
type ParamErrors []ParamError

func (e ParamErrors) Error() string {
	msgs := make([]string, len(e))
	for i, pe := range e {
		msgs[i] = fmt.Sprintf("param %q: %s", pe.Param, pe.Message)
	}
	return "invalid params: " + strings.Join(msgs, "; ")
}

// ResolveParams checks the param values given to a trigger against the DAG's param blocks and
// returns the values of every param: the given ones converted to the param's type, the
// defaults for the rest. Every problem is reported, as ParamErrors: an unknown name (with the
// near name it might mean), a value not of the param's type, a required param without a value.
func (d *DAG) ResolveParams(given map[string]json.RawMessage) (map[string]json.RawMessage, error) {
	var errs ParamErrors
	known := map[string]*Param{}
	names := make([]string, 0, len(d.Params))
	for _, p := range d.Params {
		known[p.Name] = p
		names = append(names, p.Name)
	}
	out := map[string]json.RawMessage{}
	for name, raw := range given {
		p, ok := known[name]
		if !ok {
			msg := "the DAG has no such param."
			if s := didYouMean(name, names); s != "" {
				msg += s
			} else if len(names) > 0 {
				msg += fmt.Sprintf(" It has %s.", strings.Join(quoteAll(names), ", "))
			} else {
				msg += " It takes no params."
			}
			errs = append(errs, ParamError{name, msg})
			continue
		}
		v, err := convertParam(p, raw)
		if err != nil {
			errs = append(errs, ParamError{name, err.Error()})
			continue
		}
		out[name] = v
	}
	for _, p := range d.Params {
		if _, ok := out[p.Name]; ok {
			continue
		}
		if _, bad := given[p.Name]; bad {
			continue
		}
		if p.Default == nil {
			if p.Required {
				errs = append(errs, ParamError{p.Name, "required, and no value was given"})
			}
			continue
		}
		out[p.Name] = p.Default
	}
	if len(errs) > 0 {
		sort.Slice(errs, func(i, j int) bool { return errs[i].Param < errs[j].Param })
		return nil, errs
	}
	return out, nil
}

// ParseParam reads the text of a `-param NAME=VALUE` flag for param p: the text itself for a
// string param, an HCL expression (`42`, `true`, `["eu", "us"]`) for other types.
func ParseParam(p *Param, text string) (json.RawMessage, error) {
	ty, err := paramType(p)
	if err != nil {
		return nil, err
	}
	if ty == cty.String {
		b, _ := json.Marshal(text)
		return b, nil
	}
	expr, diags := hclsyntax.ParseExpression([]byte(text), "param "+p.Name, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, fmt.Errorf("%q is not a valid %s; write it in HCL syntax, with strings in quotes, as in [\"eu\", \"us\"]", text, p.Type)
	}
	v, diags := expr.Value(nil)
	if diags.HasErrors() {
		return nil, fmt.Errorf("%q is not a valid %s; write it in HCL syntax, with strings in quotes", text, p.Type)
	}
	v, err = convert.Convert(v, ty)
	if err != nil {
		return nil, fmt.Errorf("%q is not a valid %s: %s", text, p.Type, err)
	}
	return ctyjson.Marshal(v, ty)
}

// convertParam converts a JSON value to the param's type and returns its canonical JSON.
func convertParam(p *Param, raw json.RawMessage) (json.RawMessage, error) {
	ty, err := paramType(p)
	if err != nil {
		return nil, err
	}
	implied, err := ctyjson.ImpliedType(raw)
	if err != nil {
		return nil, fmt.Errorf("not valid JSON: %s", err)
	}
	v, err := ctyjson.Unmarshal(raw, implied)
	if err != nil {
		return nil, fmt.Errorf("not valid JSON: %s", err)
	}
	v, err = convert.Convert(v, ty)
	if err != nil {
		return nil, fmt.Errorf("want a %s: %s", p.Type, err)
	}
	if v.IsNull() {
		return nil, fmt.Errorf("want a %s, not null", p.Type)
	}
	return ctyjson.Marshal(v, ty)
}

func paramType(p *Param) (cty.Type, error) {
	expr, diags := hclsyntax.ParseExpression([]byte(p.Type), "type", hcl.InitialPos)
	if diags.HasErrors() {
		return cty.NilType, fmt.Errorf("param %q has an unknown type %q", p.Name, p.Type)
	}
	ty, diags := typeexpr.Type(expr)
	if diags.HasErrors() {
		return cty.NilType, fmt.Errorf("param %q has an unknown type %q", p.Name, p.Type)
	}
	return ty, nil
}

func quoteAll(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = fmt.Sprintf("%q", n)
	}
	return out
}
