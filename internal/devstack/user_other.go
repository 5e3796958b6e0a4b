//go:build !unix

package devstack

import (
	"errors"
	"os/exec"
)

// runAs is not supported where there are no user credentials to switch to.
func runAs(dir, name string) (func(*exec.Cmd), error) {
	return nil, errors.New("running a program as another user is not supported on this platform")
}
