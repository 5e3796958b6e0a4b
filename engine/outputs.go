package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dagflow/dagflow/internal/wait"
	"github.com/dagflow/dagflow/nomadexec"
	"github.com/dagflow/dagflow/state"
)

// Task outputs: a try publishes a JSON object by writing it to the file named by the
// environment variable OutputEnv; when the try succeeds, the engine reads the file from its
// allocation, where it reads the try's logs, and stores the object with the try's final record.
const (
	// OutputEnv is the environment variable that names the file a task writes its outputs to.
	OutputEnv = "DAGFLOW_OUTPUT"

	// MaxOutputs is the most bytes a try's outputs file may hold. The object is stored in the
	// task instance's record, beside its tries (a few hundred bytes each, up to 101 of them)
	// and inside Consul's 512 KB limit for one value; and every downstream attempt reads it.
	// 64 KiB is plenty for file lists, IDs and counts, and keeps the records small enough for
	// Consul to replicate quickly. Bulk data belongs in storage the outputs point to.
	MaxOutputs = 64 << 10

	// outputFile is the outputs file's name in the allocation's shared directory, which every
	// driver mounts at NOMAD_ALLOC_DIR and Nomad's filesystem API calls "alloc".
	outputFile = "dagflow-output.json"
)

// outputEnvValue is OutputEnv's value: Nomad interpolates NOMAD_ALLOC_DIR in a task's
// environment for every driver.
const outputEnvValue = "${NOMAD_ALLOC_DIR}/" + outputFile

// tryOutputs is what was read of a finished try's outputs file.
type tryOutputs struct {
	raw     json.RawMessage // the object, compacted; nil when the try wrote no file
	problem string          // why the outputs cannot be kept, for people: the try fails with it
}

// fetchOutputs reads the outputs file of an allocation whose task succeeded, again after a
// Nomad error, as readLogs reads logs.
func (e *engine) fetchOutputs(allocID string) *tryOutputs {
	delay := logBackoff
	for n := 1; ; n++ {
		if !e.acquire(e.logCalls) {
			return &tryOutputs{problem: "cannot read its outputs: the leader stopped"}
		}
		ctx, cancel := context.WithTimeout(e.ctx, callTimeout)
		content, found, err := e.exec.ReadFile(ctx, allocID, "alloc/"+outputFile, MaxOutputs)
		cancel()
		release(e.logCalls)
		switch {
		case err == nil && !found:
			return &tryOutputs{}
		case err == nil:
			return checkOutputs(content)
		case errors.Is(err, nomadexec.ErrTooLarge):
			return &tryOutputs{problem: fmt.Sprintf("its outputs (the file %s names) are larger than the limit of %d bytes; publish a reference to bulk data instead", OutputEnv, MaxOutputs)}
		case n == logAttempts:
			e.m.apiError("nomad")
			e.log.Warn("read outputs of finished try", "alloc_id", allocID, "error", err)
			return &tryOutputs{problem: fmt.Sprintf("cannot read its outputs from Nomad: %s", err)}
		}
		// An unknown allocation is retried too: right after a Nomad leader change, the server
		// that answers may not know an allocation that just finished yet (the cluster chaos
		// scenarios saw 404 "Unknown allocation" for two tries that had succeeded), and giving
		// up would run the try again.
		e.m.apiError("nomad")
		e.log.Debug("read outputs failed, retrying", "alloc_id", allocID, "wait", delay, "error", err)
		wait.Sleep(e.ctx, delay)
		delay *= 2
	}
}

// checkOutputs returns content as outputs when it is one JSON object.
func checkOutputs(content []byte) *tryOutputs {
	trimmed := bytes.TrimSpace(content)
	if !json.Valid(trimmed) || len(trimmed) == 0 || trimmed[0] != '{' {
		what := "not valid JSON"
		if json.Valid(trimmed) && len(trimmed) > 0 {
			what = "JSON, but not an object"
		}
		return &tryOutputs{problem: fmt.Sprintf("its outputs (the file %s names) are %s; write one JSON object, such as {\"files\": [\"a.csv\"]}", OutputEnv, what)}
	}
	var b bytes.Buffer
	_ = json.Compact(&b, trimmed) // valid, checked above
	return &tryOutputs{raw: b.Bytes()}
}

// keepOutputs stores out on try cur of task t, which succeeded, and returns why the try fails
// instead when its outputs cannot be kept. Older tries give theirs up (history keeps them), so
// the record holds one object at most.
func keepOutputs(t *task, cur *state.Try, out *tryOutputs) string {
	if out == nil {
		return ""
	}
	if out.problem != "" {
		return out.problem
	}
	if out.raw == nil {
		return ""
	}
	for i := range t.ti.Tries {
		t.ti.Tries[i].Outputs = nil
	}
	cur.Outputs = out.raw
	return ""
}

// runOutputs returns the outputs of run r's task instances whose latest successful try
// published some, by task instance name: what attempts render tasks.NAME.outputs.KEY from.
func (r *run) runOutputs() map[string]json.RawMessage {
	var out map[string]json.RawMessage
	for name, t := range r.tasks {
		if o := latestOutputs(t); o != nil {
			if out == nil {
				out = map[string]json.RawMessage{}
			}
			out[name] = o
		}
	}
	return out
}
