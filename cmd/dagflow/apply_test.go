package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/cli"

	"github.com/dagflow/dagflow/internal/syncbuf"
	"github.com/dagflow/dagflow/internal/testcluster"
)

// TestConcurrentApply races two applies against one Consul: the first plans and waits at its
// confirmation prompt while the second applies; when the first is then confirmed, it must fail
// with the plan-again error and write nothing, so the second's change stands.
func TestConcurrentApply(t *testing.T) {
	consulAddr, _ := testcluster.Agents(t)
	t.Setenv("CONSUL_HTTP_ADDR", consulAddr)
	t.Setenv("NOMAD_ADDR", "http://127.0.0.1:1") // no Nomad: plan only warns
	t.Setenv("DAGFLOW_KV_PREFIX", fmt.Sprintf("race%d/", os.Getpid()))

	dir := t.TempDir()
	write := func(name, src string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p, "d.hcl"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	first := write("first", `dag "d" {
  task "a" { command = "/bin/first" }
}`)
	second := write("second", `dag "d" {
  task "a" { command = "/bin/second" }
}`)

	answer, answerW := io.Pipe()
	var firstOut, firstErr syncbuf.Buffer
	firstUI := &cli.BasicUi{Reader: answer, Writer: &firstOut, ErrorWriter: &firstErr}
	done := make(chan int)
	go func() { done <- (&ApplyCommand{Meta: &Meta{UI: firstUI}}).Run([]string{first}) }()

	// Wait until the first apply has its plan and asks.
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(firstOut.String(), "Enter a value") {
		if time.Now().After(deadline) {
			t.Fatalf("first apply never asked for confirmation; output:\n%s\n%s", firstOut.String(), firstErr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	var out, errOut bytes.Buffer
	ui := &cli.BasicUi{Reader: strings.NewReader(""), Writer: &out, ErrorWriter: &errOut}
	if code := (&ApplyCommand{Meta: &Meta{UI: ui}}).Run([]string{"-auto-approve", second}); code != 0 {
		t.Fatalf("second apply exited %d:\n%s", code, errOut.String())
	}

	if _, err := io.WriteString(answerW, "yes\n"); err != nil {
		t.Fatal(err)
	}
	if code := <-done; code != exitError {
		t.Fatalf("first apply exited %d, want %d; stderr:\n%s", code, exitError, firstErr.String())
	}
	if !strings.Contains(firstErr.String(), "Run dagflow plan again") {
		t.Errorf("first apply's error does not tell the user to plan again:\n%s", firstErr.String())
	}

	// The second apply's version is what stands: planning it again shows no changes.
	out.Reset()
	ui = &cli.BasicUi{Reader: strings.NewReader(""), Writer: &out, ErrorWriter: &errOut}
	if code := (&PlanCommand{Meta: &Meta{UI: ui}}).Run([]string{"-detailed-exitcode", second}); code != exitOK {
		t.Fatalf("plan of the winning files exited %d, want 0:\n%s%s", code, out.String(), errOut.String())
	}
}
