//go:build linux

package devstack

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// lockName is the file in an agent's temp dir that its owner holds an flock on for as long as
// the agent may run. The kernel drops the lock when the owner dies, however it dies, which is
// how sweepStale tells abandoned dirs from live ones.
const lockName = ".owner.lock"

// lockDir takes the owner lock on dir. The lock file is created and locked under a temporary
// name and renamed into place, so sweepStale never finds it unlocked while it is being made.
func lockDir(dir string) (*os.File, error) {
	tmp := filepath.Join(dir, lockName+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, lockName)); err != nil {
		f.Close()
		return nil, fmt.Errorf("place lock file: %w", err)
	}
	return f, nil
}

// sweepStale cleans up after earlier processes that died without calling Stop (a test binary
// killed by -timeout, say). Pdeathsig already killed their agents, but a Nomad agent's task
// processes (logmon, executor, the task itself) run in sessions of their own and survive it.
// They all run inside the agent's temp dir, so removeDir finds and kills them. Failures are
// ignored: this is best effort.
func sweepStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "devstack-*"))
	for _, dir := range dirs {
		f, err := os.Open(filepath.Join(dir, lockName))
		if err != nil {
			continue // never locked (foreign, or still being created): not ours to judge
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close() // its owner is alive
			continue
		}
		removeDir(dir)
		f.Close()
	}
}

// removeDir removes an agent's temp dir, first killing every process still working inside it:
// after a graceful stop there are none, but an agent killed after the stop timeout leaves its
// task processes behind, as a dead owner does (see sweepStale).
//
// A Nomad client mounts a tmpfs on each task's secrets
// and private dirs (when it runs as root) and unmounts them when it destroys the allocation; an
// agent that was killed leaves them mounted, and os.RemoveAll then fails with EBUSY. So mounts
// under dir are detached first, deepest first.
func removeDir(dir string) error {
	killProcessesIn(dir)
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		var mounts []string
		for _, line := range strings.Split(string(b), "\n") {
			// Field 5 is the mount point, with spaces and the like octal-escaped; our paths
			// have none, so an escaped one never matches.
			fields := strings.Fields(line)
			if len(fields) > 4 && strings.HasPrefix(fields[4], dir+string(filepath.Separator)) {
				mounts = append(mounts, fields[4])
			}
		}
		sort.Sort(sort.Reverse(sort.StringSlice(mounts)))
		for _, m := range mounts {
			_ = syscall.Unmount(m, syscall.MNT_DETACH)
		}
	}
	return os.RemoveAll(dir)
}

// killProcessesIn kills every process whose working directory is dir or below it, except those
// with a controlling terminal: a person's shell looking at an abandoned dir must survive.
// Agents run in sessions of their own without a terminal (see setProcAttr), and so does all
// they start.
func killProcessesIn(dir string) {
	if resolved, err := filepath.EvalSymlinks(dir); err == nil {
		dir = resolved // /proc shows resolved working directories
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if err != nil {
			continue
		}
		if cwd != dir && !strings.HasPrefix(cwd, dir+string(filepath.Separator)) {
			continue
		}
		if hasTerminal(pid) {
			continue
		}
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// hasTerminal reports whether process pid has a controlling terminal, or cannot be inspected.
func hasTerminal(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// After the command name in parentheses (which may itself hold spaces and parentheses):
	// state ppid pgrp session tty_nr ...
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return true
	}
	fields := strings.Fields(string(b[i+1:]))
	return len(fields) < 5 || fields[4] != "0"
}
