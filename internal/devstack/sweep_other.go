//go:build !linux

package devstack

import "os"

// lockDir does nothing here: only Linux sweeps abandoned temp dirs.
func lockDir(string) (*os.File, error) { return nil, nil }

// sweepStale does nothing here: finding processes by working directory needs Linux's /proc.
func sweepStale() {}

// removeDir removes an agent's temp dir.
func removeDir(dir string) error { return os.RemoveAll(dir) }

// killProcessesIn does nothing here: finding processes by working directory needs Linux's /proc.
func killProcessesIn(string) {}
