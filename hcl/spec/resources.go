package spec

// This file decodes what a task needs from its node beyond CPU and memory, in Nomad's job
// specification terms so that Nomad users recognise them: the memory_max, cores and device
// settings of a resources block, artifact blocks fetched before the task starts, and volume
// blocks (on a task or a queue) with the volume_mount blocks that mount them into a task.

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// Device asks for Count instances of a device a Nomad device plugin fingerprints, such as a
// GPU. Name is the device's type ("gpu"), vendor and type ("nvidia/gpu") or vendor, type and
// model ("nvidia/gpu/Tesla K80"), as in Nomad's device block.
type Device struct {
	Name        string       `json:"name"`
	Count       int          `json:"count"`
	Constraints []Constraint `json:"constraints,omitempty"` // on ${device.attr.*}, ${device.model}, ...
	Affinities  []Affinity   `json:"affinities,omitempty"`
}

// Affinity is a Nomad affinity: a preference, of Weight from -100 to 100 (negative: avoid),
// for devices whose Attribute compares to Value with Operator.
type Affinity struct {
	Attribute string `json:"attribute"`
	Operator  string `json:"operator"`
	Value     string `json:"value"`
	Weight    int    `json:"weight"`
}

// Artifact is a file, archive or repository Nomad fetches with go-getter into the task's
// directory before the task starts: a script, a wheel, a git checkout. Source, Destination and
// the values of Options and Headers may hold runtime values (${run.logical_date}).
type Artifact struct {
	Source      string            `json:"source"`
	Destination string            `json:"destination,omitempty"` // relative to the task directory; "": Nomad's "local/"
	Mode        string            `json:"mode,omitempty"`        // "any", "file" or "dir"; "": Nomad's "any"
	Options     map[string]string `json:"options,omitempty"`     // go-getter options, such as checksum
	Headers     map[string]string `json:"headers,omitempty"`     // HTTP headers of the download
}

// Volume is a Nomad volume an attempt's job claims: a host volume a client's configuration
// declares, or a registered CSI volume. Nomad places the job only on a node that has it.
type Volume struct {
	Name           string `json:"name"`   // what volume_mount blocks refer to
	Type           string `json:"type"`   // VolumeHost or VolumeCSI
	Source         string `json:"source"` // the host volume's name on the client, or the CSI volume's ID
	ReadOnly       bool   `json:"read_only,omitempty"`
	AccessMode     string `json:"access_mode,omitempty"`
	AttachmentMode string `json:"attachment_mode,omitempty"`

	DeclRange hcl.Range `json:"-"`
}

// VolumeMount mounts a volume of the task or of its queue at Destination in the task.
type VolumeMount struct {
	Volume      string `json:"volume"`
	Destination string `json:"destination"`
	ReadOnly    bool   `json:"read_only,omitempty"`

	DeclRange hcl.Range `json:"-"`
}

// Volume types, as Nomad names them.
const (
	VolumeHost = "host"
	VolumeCSI  = "csi"
)

const (
	// DefaultDeviceCount is the count of a device block that sets none: one, as in Nomad.
	DefaultDeviceCount = 1

	// DefaultAffinityWeight is the weight of an affinity block that sets none: 50, as in Nomad.
	DefaultAffinityWeight = 50

	// MaxDeviceCount bounds a device block's count; no node has more instances of a device.
	MaxDeviceCount = 1024
)

// ArtifactModes are the modes of Nomad's artifact block: "any" unpacks archives and keeps
// files as they are, "file" and "dir" insist on one.
var ArtifactModes = []string{"any", "file", "dir"}

// VolumeAccessModes are the access modes Nomad accepts in a volume block: the CSI ones, and the
// single-node-single-writer and single-node-multi-writer modes of dynamic host volumes.
var VolumeAccessModes = []string{
	"single-node-reader-only", "single-node-writer", "single-node-single-writer",
	"single-node-multi-writer", "multi-node-reader-only", "multi-node-single-writer",
	"multi-node-multi-writer",
}

// VolumeAttachmentModes are the attachment modes Nomad accepts in a volume block.
var VolumeAttachmentModes = []string{"file-system", "block-device"}

// AffinityOperators are the operators of Nomad's affinity block.
var AffinityOperators = []string{
	"=", "==", "is", "!=", "not", "<", "<=", ">", ">=", "regexp", "version", "semver",
	"set_contains", "set_contains_all", "set_contains_any",
}

// deviceOperators are the constraint operators a device block may use: Nomad refuses the
// distinct_* ones there, which are about nodes, not devices.
var deviceOperators = slices.DeleteFunc(slices.Clone(ConstraintOperators), func(op string) bool {
	return op == "distinct_hosts" || op == "distinct_property"
})

// deviceRoots are the interpolation namespaces of a device's constraints and affinities.
var deviceRoots = map[string]bool{"device": true}

// storageBlocks are the blocks a task block takes beyond the settings a defaults block shares.
var storageBlocks = []hcl.BlockHeaderSchema{
	{Type: "artifact"},
	{Type: "volume", LabelNames: []string{"name"}},
	{Type: "volume_mount"},
}

var (
	deviceSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "count"}},
		Blocks:     []hcl.BlockHeaderSchema{{Type: "constraint"}, {Type: "affinity"}},
	}
	affinitySchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "attribute"}, {Name: "operator"}, {Name: "value"}, {Name: "weight"}},
	}
	artifactSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "source", Required: true}, {Name: "destination"}, {Name: "mode"}, {Name: "options"}, {Name: "headers"}},
	}
	volumeSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "type"}, {Name: "source", Required: true}, {Name: "read_only"}, {Name: "access_mode"}, {Name: "attachment_mode"}},
	}
	volumeMountSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "volume", Required: true}, {Name: "destination", Required: true}, {Name: "read_only"}},
	}
)

// withBlocks returns s with blocks added to its block types.
func withBlocks(s *hcl.BodySchema, blocks ...hcl.BlockHeaderSchema) *hcl.BodySchema {
	s.Blocks = append(s.Blocks, blocks...)
	return s
}

// resourceExtras applies memory_max, cores and the device blocks of one resources block over
// t, after its cpu and memory. Within one block cpu and cores exclude each other, as in Nomad;
// across a defaults block and a task the task's choice wins, so a task that sets cores drops
// the cpu its defaults set, and the other way round. A task's device blocks replace its
// defaults' devices as a whole.
func (e *evaluator) resourceExtras(t *Task, rc *hcl.BodyContent, s refScope) {
	r := &t.Resources
	at := rc.Attributes
	cpu, cores := at["cpu"], at["cores"]
	if e.int(cores, s, 1, 1024, &r.Cores) {
		if cpu != nil {
			e.diags = append(e.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Both cpu and cores",
				Detail:  fmt.Sprintf("The resources block of %s sets cpu (MHz shared with other tasks) and cores (whole cores for the task alone), and Nomad takes one or the other. Remove one of them.", who(t)),
				Subject: cores.NameRange.Ptr(),
			})
		}
		r.CPU = 0
	} else if cpu != nil && cores == nil {
		r.Cores = 0
	}
	maxAttr, memAttr := at["memory_max"], at["memory"]
	e.int(maxAttr, s, 10, 1<<24, &r.MemoryMaxMB)
	if (maxAttr != nil || memAttr != nil) && r.MemoryMaxMB != 0 && r.MemoryMaxMB < r.MemoryMB {
		subject := memAttr
		if maxAttr != nil {
			subject = maxAttr
		}
		e.fail(subject, "Invalid memory_max", fmt.Errorf("%s would get memory_max %d MiB, less than the %d MiB of memory it reserves: raise memory_max to at least memory, or remove it", who(t), r.MemoryMaxMB, r.MemoryMB))
	}
	blocks := rc.Blocks.OfType("device")
	if len(blocks) == 0 {
		return
	}
	r.Devices = nil
	seen := map[string]hcl.Range{}
	for _, b := range blocks {
		d := Device{Name: b.Labels[0], Count: DefaultDeviceCount}
		if prev, ok := seen[d.Name]; ok {
			e.diags = append(e.diags, duplicate("device", d.Name, b.DefRange, prev))
			continue
		}
		seen[d.Name] = b.DefRange
		if parts := strings.SplitN(d.Name, "/", 3); slices.Contains(parts, "") {
			e.diags = append(e.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Invalid device name",
				Detail:  fmt.Sprintf("The device name %q is not one Nomad can match: write the device's type (\"gpu\"), vendor and type (\"nvidia/gpu\"), or vendor, type and model (\"nvidia/gpu/Tesla K80\").", d.Name),
				Subject: b.LabelRanges[0].Ptr(),
			})
		}
		dc, ddiags := bodyContent(b.Body, deviceSchema)
		e.diags = append(e.diags, ddiags...)
		e.int(dc.Attributes["count"], s, 1, MaxDeviceCount, &d.Count)
		kind := constraintKind{owner: fmt.Sprintf("device %q", d.Name), roots: deviceRoots, example: "${device.attr.memory}", operators: deviceOperators}
		for _, cb := range dc.Blocks.OfType("constraint") {
			d.Constraints = append(d.Constraints, e.file.decodeConstraint(e, cb, kind))
		}
		for _, ab := range dc.Blocks.OfType("affinity") {
			d.Affinities = append(d.Affinities, e.decodeAffinity(ab, d.Name))
		}
		r.Devices = append(r.Devices, d)
	}
	slices.SortFunc(r.Devices, func(a, b Device) int { return strings.Compare(a.Name, b.Name) })
}

// decodeAffinity decodes and validates one affinity block of device name.
func (e *evaluator) decodeAffinity(b *hcl.Block, name string) Affinity {
	ac, adiags := bodyContent(b.Body, affinitySchema)
	e.diags = append(e.diags, adiags...)
	a := Affinity{Operator: "=", Weight: DefaultAffinityWeight}
	at := ac.Attributes
	e.file.nomadString(e, at["attribute"], deviceRoots, &a.Attribute)
	e.file.nomadString(e, at["value"], deviceRoots, &a.Value)
	if op := at["operator"]; e.str(op, refScope{}, &a.Operator) {
		e.oneOf(op, "affinity operator", a.Operator, AffinityOperators)
	}
	if w := at["weight"]; e.int(w, refScope{}, -100, 100, &a.Weight) && a.Weight == 0 {
		e.fail(w, "Invalid affinity weight", fmt.Errorf("an affinity of weight 0 would change nothing: use a weight from 1 to 100 to prefer such devices, or from -1 to -100 to avoid them"))
	}
	for _, req := range []string{"attribute", "value"} {
		if at[req] == nil {
			e.diags = append(e.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Missing affinity " + req,
				Detail:  fmt.Sprintf("This affinity of device %q needs an attribute and a value, such as attribute = \"${device.model}\" and value = \"Tesla K80\".", name),
				Subject: b.DefRange.Ptr(),
			})
			break
		}
	}
	return a
}

// storage decodes the artifact, volume and volume_mount blocks of a task block into t.
// Mounts are checked against the task's and its queue's volumes by checkMounts, once every
// queue is known.
func (e *evaluator) storage(t *Task, content *hcl.BodyContent, s refScope) {
	for _, b := range content.Blocks.OfType("artifact") {
		t.Artifacts = append(t.Artifacts, e.decodeArtifact(b, s))
	}
	t.Volumes = e.file.decodeVolumes(e, content.Blocks.OfType("volume"), s)
	for _, b := range content.Blocks.OfType("volume_mount") {
		mc, mdiags := bodyContent(b.Body, volumeMountSchema)
		e.diags = append(e.diags, mdiags...)
		m := VolumeMount{DeclRange: b.DefRange}
		e.str(mc.Attributes["volume"], s, &m.Volume)
		if a := mc.Attributes["destination"]; e.str(a, s, &m.Destination) && m.Destination == "" {
			e.fail(a, "Empty volume_mount destination", fmt.Errorf("a volume_mount needs the path the volume appears at in the task, such as destination = \"/data\""))
		}
		e.bool(mc.Attributes["read_only"], s, &m.ReadOnly)
		t.VolumeMounts = append(t.VolumeMounts, m)
	}
	if len(t.VolumeMounts) > 0 && t.Driver == DriverRawExec {
		e.diags = append(e.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: "Volume mount with raw_exec",
			Detail:  fmt.Sprintf("Task %q mounts a volume, but runs with the raw_exec driver, which cannot mount volumes: Nomad would fail every try. Use driver = \"exec\" or \"docker\", or read the host path directly.", t.Name),
			Subject: t.VolumeMounts[0].DeclRange.Ptr(),
		})
	}
}

// decodeArtifact decodes one artifact block; its strings may hold runtime values.
func (e *evaluator) decodeArtifact(b *hcl.Block, s refScope) Artifact {
	ac, adiags := bodyContent(b.Body, artifactSchema)
	e.diags = append(e.diags, adiags...)
	s.runtime = true
	var art Artifact
	at := ac.Attributes
	if a := at["source"]; e.str(a, s, &art.Source) && art.Source == "" {
		e.fail(a, "Empty artifact source", fmt.Errorf("an artifact needs the address to fetch, such as source = \"https://example.com/job.py\" or \"git::https://github.com/org/repo\""))
	}
	e.str(at["destination"], s, &art.Destination)
	if a := at["mode"]; e.str(a, s, &art.Mode) {
		e.oneOf(a, "artifact mode", art.Mode, ArtifactModes)
	}
	art.Options = e.runtimeMap(at["options"], s)
	art.Headers = e.runtimeMap(at["headers"], s)
	return art
}

// runtimeMap evaluates a map of strings whose values may hold runtime values.
func (e *evaluator) runtimeMap(a *hcl.Attribute, s refScope) map[string]string {
	v, ok := e.convertTo(a, s, cty.Map(cty.String))
	if !ok {
		return nil
	}
	out := map[string]string{}
	for k, el := range v.AsValueMap() {
		if el.IsNull() {
			e.fail(a, "Null map value", fmt.Errorf("the value of %q in %s is null; give it a string or remove the key", k, a.Name))
			continue
		}
		text, err := templateString(el.AsString())
		if err != nil {
			e.fail(a, "Runtime value used in a function", err)
			continue
		}
		out[k] = text
	}
	return out
}

// decodeVolumes decodes the volume blocks of a task or queue, sorted by name.
func (f *fileScope) decodeVolumes(e *evaluator, blocks hcl.Blocks, s refScope) []Volume {
	var out []Volume
	seen := map[string]hcl.Range{}
	for _, b := range blocks {
		v := Volume{Name: b.Labels[0], Type: VolumeHost, DeclRange: b.DefRange}
		if !namePattern.MatchString(v.Name) {
			e.diags = append(e.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Invalid volume name",
				Detail:  fmt.Sprintf("The volume name %q cannot be used: start with a letter or digit and use only letters, digits, \"_\" and \"-\", at most 64 of them.", v.Name),
				Subject: b.LabelRanges[0].Ptr(),
			})
			continue
		}
		if prev, ok := seen[v.Name]; ok {
			e.diags = append(e.diags, duplicate("volume", v.Name, b.DefRange, prev))
			continue
		}
		seen[v.Name] = b.DefRange
		vc, vdiags := bodyContent(b.Body, volumeSchema)
		e.diags = append(e.diags, vdiags...)
		at := vc.Attributes
		if a := at["type"]; e.str(a, s, &v.Type) {
			e.oneOf(a, "volume type", v.Type, []string{VolumeHost, VolumeCSI})
		}
		if a := at["source"]; e.str(a, s, &v.Source) && v.Source == "" {
			e.fail(a, "Empty volume source", fmt.Errorf("a volume needs its source: the name of a host_volume in the Nomad client's configuration, or the ID of a registered CSI volume"))
		}
		e.bool(at["read_only"], s, &v.ReadOnly)
		if a := at["access_mode"]; e.str(a, s, &v.AccessMode) {
			e.oneOf(a, "access_mode", v.AccessMode, VolumeAccessModes)
		}
		if a := at["attachment_mode"]; e.str(a, s, &v.AttachmentMode) {
			e.oneOf(a, "attachment_mode", v.AttachmentMode, VolumeAttachmentModes)
		}
		if v.Type == VolumeCSI && (at["access_mode"] == nil || at["attachment_mode"] == nil) {
			e.diags = append(e.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "CSI volume without modes",
				Detail:  fmt.Sprintf("Volume %q is a CSI volume, and Nomad needs its access_mode and attachment_mode, such as access_mode = \"single-node-writer\" and attachment_mode = \"file-system\".", v.Name),
				Subject: b.DefRange.Ptr(),
			})
		}
		if strings.HasSuffix(v.AccessMode, "-reader-only") && !v.ReadOnly {
			e.diags = append(e.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Read-only access mode on a writable volume",
				Detail:  fmt.Sprintf("Volume %q has access_mode %q, which Nomad accepts only with read_only = true. Set read_only = true, or choose a writer access mode.", v.Name, v.AccessMode),
				Subject: b.DefRange.Ptr(),
			})
		}
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b Volume) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// checkMounts reports the volume_mount blocks of t that name a volume neither t nor its queue
// q (nil when unknown, which is reported already) declares, and task volumes whose names its
// queue's volumes already take: the job would have two volumes of one name.
func checkMounts(t *Task, q *Queue) hcl.Diagnostics {
	var diags hcl.Diagnostics
	declared := map[string]bool{}
	var queueVolumes []Volume
	if q != nil {
		queueVolumes = q.Volumes
	}
	for _, v := range queueVolumes {
		declared[v.Name] = true
	}
	for _, v := range t.Volumes {
		if declared[v.Name] {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: fmt.Sprintf("Duplicate volume %q", v.Name),
				Detail:  fmt.Sprintf("Task %q declares volume %q, and its queue %q declares one of that name, which joins every task of the queue. Rename the task's volume, or mount the queue's.", t.Name, v.Name, t.Queue),
				Subject: v.DeclRange.Ptr(),
			})
		}
		declared[v.Name] = true
	}
	for _, m := range t.VolumeMounts {
		if m.Volume == "" || declared[m.Volume] {
			continue
		}
		detail := fmt.Sprintf("Task %q mounts volume %q, but neither the task nor its queue %q declares a volume of that name.", t.Name, m.Volume, t.Queue)
		if len(declared) > 0 {
			detail += didYouMean(m.Volume, slices.Sorted(maps.Keys(declared)))
		}
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: "Unknown volume",
			Detail:  detail + " Declare it with a volume block in the task or its queue.",
			Subject: m.DeclRange.Ptr(),
		})
	}
	return diags
}

// who names the block whose settings t holds in messages: a task, or the DAG's defaults block,
// which decodes into a task without a name.
func who(t *Task) string {
	if t.Name == "" {
		return "the defaults block"
	}
	return fmt.Sprintf("task %q", t.Name)
}

// renderArtifacts returns a copy of artifacts with render applied to their templates.
func renderArtifacts(artifacts []Artifact, render func(field, tmpl string) (string, error)) ([]Artifact, error) {
	if artifacts == nil {
		return nil, nil
	}
	out := make([]Artifact, len(artifacts))
	for i, a := range artifacts {
		var err error
		field := fmt.Sprintf("artifact %d", i+1)
		r := a
		if r.Source, err = render(field+" source", a.Source); err != nil {
			return nil, err
		}
		if r.Destination, err = render(field+" destination", a.Destination); err != nil {
			return nil, err
		}
		for _, m := range []struct {
			name     string
			from, to *map[string]string
		}{{"options", &a.Options, &r.Options}, {"headers", &a.Headers, &r.Headers}} {
			if *m.from == nil {
				continue
			}
			rendered := make(map[string]string, len(*m.from))
			for k, v := range *m.from {
				if rendered[k], err = render(field+" "+m.name+" "+k, v); err != nil {
					return nil, err
				}
			}
			*m.to = rendered
		}
		out[i] = r
	}
	return out, nil
}
