//go:build unix && !linux

package devstack

import (
	"os/exec"
	"syscall"
)

// setProcAttr starts the agent in a session of its own, without a controlling terminal, so a
// Ctrl-C meant for the program that started it does not reach it and killGroup reaches the
// children it spawns. Only Linux can tie the agent's life to its parent's; elsewhere Stop must run.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
}

// killGroup kills every process left in the group the agent leads. Errors are ignored: the
// usual one is that the group is already empty.
func killGroup(pid int) {
	_ = syscall.Kill(-pid, syscall.SIGKILL)
}
