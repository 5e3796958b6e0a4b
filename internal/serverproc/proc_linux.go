//go:build linux

package serverproc

import (
	"os/exec"
	"syscall"
)

// setProcAttr puts the server in a process group of its own, so a Ctrl-C meant for the
// program that started it does not reach it (that program decides how it ends), and has the
// kernel kill it when the thread that started it dies: a test binary killed by
// `go test -timeout` or a signal leaves no server behind.
//
// Pdeathsig fires when the starting OS thread exits, not the process. The Go runtime only ends
// threads that a goroutine left locked, which this package never does.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
