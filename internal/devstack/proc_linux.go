//go:build linux

package devstack

import (
	"os/exec"
	"syscall"
)

// setProcAttr starts the agent in a session of its own, without a controlling terminal: a
// Ctrl-C meant for the program that started it does not reach it, its process group (same ID
// as the agent) lets killGroup reach the children it spawns, and removeDir can tell the
// processes it left behind from a person's shell. The kernel also kills the agent when the
// thread that started it dies: a test binary killed by `go test -timeout` or a signal leaves no
// agent behind.
//
// Pdeathsig fires when the starting OS thread exits, not the process. The Go runtime only ends
// threads that a goroutine left locked, which this package never does.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL}
}

// killGroup kills every process left in the group the agent leads. Errors are ignored: the
// usual one is that the group is already empty.
func killGroup(pid int) {
	_ = syscall.Kill(-pid, syscall.SIGKILL)
}
