package nomadexec

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"
)

// The guard keeps a job registered again after its try ended and its job was purged from
// running the try a second time.
//
// Registrations are create-only, which is enough while a job exists. But Nomad has no fencing
// token, so a deposed leader frozen (SIGSTOP, a paused VM) with a registration on its way can
// send it after its successor ran the try and purged the job, and Nomad would create the job
// anew. The engine bounds that with lock confirmations (see engine.register), down to a freeze
// between its last clock check and the write itself that outlasts PurgeAfter; the guard closes
// what is left, with Nomad's own means:
//
//   - Purge writes a tombstone, a Nomad Variable under GuardPrefix in the job's namespace,
//     before it purges the job. Its item GuardItem holds the job's MetaQueued.
//   - Every job carries a template (GuardFile) that fails the task before it starts when that
//     tombstone exists with the job's own MetaQueued, naming why. Nomad's own per-job path
//     (nomad/jobs/<job ID>), which a workload may read without a policy, cannot be used:
//     variable paths hold no ".", and job IDs do. With ACLs the tasks of a namespace need read
//     on GuardPrefix, as on their secrets.
//   - SweepGuards deletes tombstones older than what the engine keeps them for.
//
// MetaQueued (when the scheduler recorded the try) tells a re-registered try from a later,
// legitimate one under the same job ID: a run deleted and made again has new tries recorded
// at other times.
const (
	// MetaQueued is the meta key of when the scheduler recorded the try (Attempt.Queued).
	MetaQueued = "dagflow_queued"

	// GuardItem is the tombstone's item that holds the purged job's MetaQueued.
	GuardItem = "purged_queued"

	// GuardFile is where the guard template renders (an empty file) in the task directory.
	GuardFile = "local/dagflow-guard"

	// GuardMessage starts the error a guarded job fails with, in Nomad's "Template failed"
	// event.
	GuardMessage = "dagflow: this try ended and its job was purged; a deposed leader registered it again"
)

// GuardPrefix starts the path of every tombstone. Under dagflow/, the path the documented
// task policy lets the tasks of a namespace read (docs/language.md, "Secrets and Nomad ACLs").
const GuardPrefix = "dagflow/purged/"

// maxVariablePath is the longest path Nomad takes for a variable ([A-Za-z0-9-_~/]{1,128}).
const maxVariablePath = 128

// GuardPath is the path of the tombstone of job jobID: the ID after GuardPrefix with each "."
// (which variable paths may not hold, and job IDs hold no "~") as "~", so that the tombstones
// of one installation share the prefix GuardPath(prefix). An ID too long for that is cut and
// ends in 16 hex digits of its SHA-256.
func GuardPath(jobID string) string {
	p := GuardPrefix + strings.ReplaceAll(jobID, ".", "~")
	if len(p) <= maxVariablePath {
		return p
	}
	sum := sha256.Sum256([]byte(jobID))
	const hashLen = 16
	return p[:maxVariablePath-1-hashLen] + "~" + hex.EncodeToString(sum[:])[:hashLen]
}

// addGuard adds the guard template of job jobID, whose try was recorded at queued (its
// MetaQueued), to task.
func addGuard(task *nomadapi.Task, jobID, queued string) {
	path := GuardPath(jobID)
	tmpl := fmt.Sprintf(`{{ if nomadVarExists %q }}{{ with nomadVar %q }}{{ if eq .%s.Value %q }}{{ sprig_fail %q }}{{ end }}{{ end }}{{ end }}`,
		path, path, GuardItem, queued, GuardMessage+": not running it twice")
	task.Templates = append(task.Templates, &nomadapi.Template{
		EmbeddedTmpl: ptr(tmpl),
		DestPath:     ptr(GuardFile),
		ChangeMode:   ptr("noop"),
	})
}

// writeGuard writes the tombstone of job stub before it is purged.
func (e *Executor) writeGuard(ctx context.Context, stub *nomadapi.JobListStub) error {
	v := &nomadapi.Variable{
		Namespace: stub.Namespace,
		Path:      GuardPath(stub.ID),
		Items:     nomadapi.VariableItems{GuardItem: stub.Meta[MetaQueued]},
	}
	wo := (&nomadapi.WriteOptions{Namespace: stub.Namespace}).WithContext(ctx)
	if _, _, err := e.client.Variables().Update(v, wo); err != nil {
		return fmt.Errorf("write the tombstone of job %q in namespace %q: %w: %w", stub.ID, stub.Namespace, ErrNomad, err)
	}
	return nil
}

// SweepGuards deletes the tombstones of this Executor's purged jobs last written before
// cutoff, in every namespace, and returns how many it deleted. Errors wrap ErrNomad.
func (e *Executor) SweepGuards(ctx context.Context, cutoff time.Time) (int, error) {
	q := (&nomadapi.QueryOptions{Namespace: allNamespaces}).WithContext(ctx)
	vars, _, err := e.client.Variables().PrefixList(GuardPath(e.prefix), q)
	if err != nil {
		return 0, fmt.Errorf("list tombstones: %w: %w", ErrNomad, err)
	}
	n := 0
	for _, v := range vars {
		if !time.Unix(0, v.ModifyTime).Before(cutoff) {
			continue
		}
		wo := (&nomadapi.WriteOptions{Namespace: v.Namespace}).WithContext(ctx)
		if _, err := e.client.Variables().Delete(v.Path, wo); err != nil {
			return n, fmt.Errorf("delete tombstone %q in namespace %q: %w: %w", v.Path, v.Namespace, ErrNomad, err)
		}
		n++
	}
	return n, nil
}
