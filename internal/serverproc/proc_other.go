//go:build unix && !linux

package serverproc

import (
	"os/exec"
	"syscall"
)

// setProcAttr puts the server in a process group of its own, so a Ctrl-C meant for the
// program that started it does not reach it. Only Linux can tie the server's life to its
// parent's; elsewhere Close must run.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}
