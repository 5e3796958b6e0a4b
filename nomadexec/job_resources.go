package nomadexec

// This file turns what a task asks of its node beyond its command into the job's parts: the
// task's resources (CPU or cores, memory and memory_max, devices), its artifacts, and the
// volumes of the task and its queue, which Nomad keeps on the group, with their mounts.

import (
	"maps"
	"slices"
	"strings"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dagflow/dagflow/hcl/spec"
)

// taskResources returns the Nomad resources of r, or nil when r sets nothing, so Nomad's
// defaults apply. CPU and cores are set only when non-zero, as Nomad takes one or the other.
func taskResources(r spec.Resources) *nomadapi.Resources {
	if r.CPU <= 0 && r.MemoryMB <= 0 && r.Cores <= 0 && r.MemoryMaxMB <= 0 && len(r.Devices) == 0 {
		return nil
	}
	out := &nomadapi.Resources{}
	if r.CPU > 0 {
		out.CPU = ptr(r.CPU)
	}
	if r.Cores > 0 {
		out.Cores = ptr(r.Cores)
	}
	if r.MemoryMB > 0 {
		out.MemoryMB = ptr(r.MemoryMB)
	}
	if r.MemoryMaxMB > 0 {
		out.MemoryMaxMB = ptr(r.MemoryMaxMB)
	}
	for _, d := range r.Devices {
		rd := &nomadapi.RequestedDevice{Name: d.Name, Count: ptr(uint64(max(d.Count, 1)))}
		for _, c := range d.Constraints {
			rd.Constraints = append(rd.Constraints, nomadapi.NewConstraint(c.Attribute, orEqual(c.Operator), c.Value))
		}
		for _, a := range d.Affinities {
			rd.Affinities = append(rd.Affinities, nomadapi.NewAffinity(a.Attribute, orEqual(a.Operator), a.Value, int8(a.Weight)))
		}
		out.Devices = append(out.Devices, rd)
	}
	return out
}

// addStorage adds the task's artifacts and volume mounts to task, and the volumes of the
// task and its queue q to group. Volumes are keyed by name on the group, as in Nomad's job
// specification; validation keeps a task's volume names apart from its queue's, and a task's
// own volume wins here should a stored definition still have both.
func addStorage(group *nomadapi.TaskGroup, task *nomadapi.Task, t *spec.Task, q *spec.Queue) {
	for _, a := range t.Artifacts {
		art := &nomadapi.TaskArtifact{
			GetterSource:  ptr(a.Source),
			GetterOptions: maps.Clone(a.Options),
			GetterHeaders: maps.Clone(a.Headers),
		}
		if a.Destination != "" {
			art.RelativeDest = ptr(a.Destination)
		}
		if a.Mode != "" {
			art.GetterMode = ptr(a.Mode)
		}
		task.Artifacts = append(task.Artifacts, art)
	}
	volumes := map[string]*nomadapi.VolumeRequest{}
	for _, v := range slices.Concat(q.Volumes, t.Volumes) {
		volumes[v.Name] = &nomadapi.VolumeRequest{
			Name: v.Name, Type: v.Type, Source: v.Source, ReadOnly: v.ReadOnly,
			AccessMode: v.AccessMode, AttachmentMode: v.AttachmentMode,
		}
	}
	if len(volumes) > 0 {
		group.Volumes = volumes
	}
	for _, m := range t.VolumeMounts {
		task.VolumeMounts = append(task.VolumeMounts, &nomadapi.VolumeMount{
			Volume: ptr(m.Volume), Destination: ptr(m.Destination), ReadOnly: ptr(m.ReadOnly),
		})
	}
}

// orEqual is a constraint or affinity operator, "=" when it is empty, as Nomad defaults it.
func orEqual(op string) string {
	if strings.TrimSpace(op) == "" {
		return "="
	}
	return op
}
