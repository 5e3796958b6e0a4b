package state_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/dagflow/dagflow/state"
	"github.com/dagflow/dagflow/state/statetest"
)

// TestLogsOp: a short output tail rides in its task instance's record, without a key of its
// own; a long one, and a tail that would take the record's tails over their budget, get a key;
// Logs reads all of them back, and a try without logs is ErrNotFound.
func TestLogsOp(t *testing.T) {
	newStore, _, client := statetest.Stores(t)
	s := newStore(t)
	ctx := context.Background()
	ti := &state.TaskInstance{DAG: "d", RunID: "r", Task: "t"}
	short := &state.Logs{Stdout: []byte("done\n")}
	long := &state.Logs{Stdout: bytes.Repeat([]byte("x"), 3000)}
	medium := &state.Logs{Stderr: bytes.Repeat([]byte("y"), 1400)}
	tails := []*state.Logs{short, long}
	for range 6 {
		tails = append(tails, medium)
	}
	var ops consulapi.TxnOps
	ownKeys := 0
	for i, l := range tails {
		ti.Tries = append(ti.Tries, state.Try{Try: i + 1})
		op, err := s.LogsOp(ti, &ti.Tries[i], l)
		if err != nil {
			t.Fatal(err)
		}
		if !ti.Tries[i].Logs {
			t.Errorf("try %d: Logs not set", i+1)
		}
		if op != nil {
			ops = append(ops, op)
			ownKeys++
		}
	}
	// Inline: short and five medium tails (1,400 bytes of output, 1.9 KB encoded, each) fit
	// in the record's 8 KiB; the long one (over 2 KiB encoded) and the sixth medium one do not.
	if ti.Tries[0].Tail == nil || ti.Tries[1].Tail != nil || ti.Tries[7].Tail != nil {
		t.Errorf("inline tails: try 1 %v, try 2 %v, try 8 %v; want only try 1 of those inline", ti.Tries[0].Tail != nil, ti.Tries[1].Tail != nil, ti.Tries[7].Tail != nil)
	}
	if ownKeys != 2 {
		t.Errorf("%d tails got a key of their own, want 2 (the long one and the one over budget)", ownKeys)
	}
	ti.Tries = append(ti.Tries, state.Try{Try: len(tails) + 1}) // no logs
	op, err := s.PutTaskOp(ti)
	if err != nil {
		t.Fatal(err)
	}
	ops = append(ops, op)
	if ok, resp, _, err := client.Txn().Txn(ops, nil); err != nil || !ok {
		t.Fatalf("txn: %v %+v", err, resp)
	}
	for i, want := range tails {
		got, err := s.Logs(ctx, "d", "r", "t", i+1)
		if err != nil {
			t.Fatalf("Logs try %d: %v", i+1, err)
		}
		if !bytes.Equal(got.Stdout, want.Stdout) || !bytes.Equal(got.Stderr, want.Stderr) {
			t.Errorf("Logs try %d: %d/%d bytes, want %d/%d", i+1, len(got.Stdout), len(got.Stderr), len(want.Stdout), len(want.Stderr))
		}
	}
	if _, err := s.Logs(ctx, "d", "r", "t", len(tails)+1); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("Logs of a try without logs: %v, want ErrNotFound", err)
	}
	keys, _, err := client.KV().Keys("", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	logKeys := 0
	for _, k := range keys {
		if strings.Contains(k, "logs/") {
			logKeys++
		}
	}
	if logKeys != 2 {
		t.Errorf("%d log keys in Consul (%q), want 2", logKeys, keys)
	}
}
