package spec

import (
	"sync"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// bodyContent is body.Content(schema), built without the maps hclsyntax builds anew on every
// call: for each call it indexes the schema's block types and tracks what it has seen in two
// more maps, which for 10,000 DAGs of ten tasks was a sixth of what loading them allocated.
//
// The fast path is taken only when Content would report nothing: a body the parser produced
// (hclsyntax.Body, as every body in a DAG file is), every attribute and block of which the
// schema declares, blocks with as many labels as their schema names, and every required
// attribute present. Otherwise bodyContent returns what body.Content returns, diagnostics and
// all, so the messages are hcl's own.
func bodyContent(body hcl.Body, schema *hcl.BodySchema) (*hcl.BodyContent, hcl.Diagnostics) {
	sb, ok := body.(*hclsyntax.Body)
	if !ok {
		return body.Content(schema)
	}
	idx := indexSchema(schema)
	if len(sb.Attributes) < idx.required {
		return body.Content(schema)
	}
	attrs := make(hcl.Attributes, len(sb.Attributes))
	for name, a := range sb.Attributes {
		if _, ok := idx.attrs[name]; !ok {
			return body.Content(schema)
		}
		attrs[name] = a.AsHCLAttribute()
	}
	for name := range idx.requiredNames {
		if _, ok := sb.Attributes[name]; !ok {
			return body.Content(schema)
		}
	}
	var blocks hcl.Blocks
	for _, b := range sb.Blocks {
		labels, ok := idx.blocks[b.Type]
		if !ok || len(b.Labels) != labels {
			return body.Content(schema)
		}
		blocks = append(blocks, b.AsHCLBlock())
	}
	return &hcl.BodyContent{Attributes: attrs, Blocks: blocks, MissingItemRange: sb.MissingItemRange()}, nil
}

// schemaIndex is what bodyContent looks up in a schema.
type schemaIndex struct {
	attrs         map[string]struct{}
	requiredNames map[string]struct{}
	required      int
	blocks        map[string]int // block type: how many labels
}

// schemaIndexes holds the index of every schema bodyContent was called with, by pointer: the
// schemas are package variables, built once. Safe for concurrent use, as DAGs decode on every
// core.
var schemaIndexes sync.Map // *hcl.BodySchema → *schemaIndex

func indexSchema(schema *hcl.BodySchema) *schemaIndex {
	if v, ok := schemaIndexes.Load(schema); ok {
		return v.(*schemaIndex)
	}
	idx := &schemaIndex{attrs: map[string]struct{}{}, requiredNames: map[string]struct{}{}, blocks: map[string]int{}}
	for _, a := range schema.Attributes {
		idx.attrs[a.Name] = struct{}{}
		if a.Required {
			idx.requiredNames[a.Name] = struct{}{}
		}
	}
	idx.required = len(idx.requiredNames)
	for _, b := range schema.Blocks {
		idx.blocks[b.Type] = len(b.LabelNames) // the last of a type counts, as in hclsyntax
	}
	v, _ := schemaIndexes.LoadOrStore(schema, idx)
	return v.(*schemaIndex)
}
