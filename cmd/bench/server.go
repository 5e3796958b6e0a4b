package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dagflow/dagflow/api"
	"github.com/dagflow/dagflow/internal/serverproc"
)

// serverOptions configure one dagflow server child process.
type serverOptions struct {
	Bin         string // the dagflow binary
	Dir         string // where its config and log go
	ConsulAddr  string // 127.0.0.1:PORT
	NomadAddr   string // http://127.0.0.1:PORT
	KVPrefix    string
	JobPrefix   string
	ServiceName string
}

// serverProc is a real `dagflow server` process (internal/serverproc), so that its memory and
// CPU are its own. Its API is open to anonymous callers as admin: it listens on 127.0.0.1
// only and lives as long as the bench.
type serverProc struct {
	URL     string
	LogPath string
	proc    *serverproc.Server
}

// serverConfig is what the bench's servers add to serverproc's configuration.
const serverConfig = `
acl {
  anonymous_role = "admin"
}

retention {
  # The bench reads the jobs' times from Nomad after a run; they must outlive it.
  purge_after = "1h"
}
`

// startServer starts a server and returns once it is the active instance.
func startServer(ctx context.Context, o serverOptions) (*serverProc, error) {
	p, err := serverproc.Start(ctx, serverproc.Options{
		Binary: o.Bin, ConsulAddr: o.ConsulAddr, NomadAddr: o.NomadAddr,
		KVPrefix: o.KVPrefix, JobPrefix: o.JobPrefix, ServiceName: o.ServiceName,
		LogLevel: "warn", Config: serverConfig, Dir: filepath.Join(o.Dir, o.ServiceName),
	})
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := serverproc.WaitActive(wctx, p); err != nil {
		_ = p.Close()
		return nil, fmt.Errorf("%w (server log: %s)", err, p.LogPath())
	}
	return &serverProc{URL: p.URL(), LogPath: p.LogPath(), proc: p}, nil
}

// Client returns an API client for the server.
func (s *serverProc) Client() (*api.Client, error) {
	return api.NewClient(&api.Config{Address: s.URL})
}

// Pid returns the server's process ID.
func (s *serverProc) Pid() int { return s.proc.Pid() }

// Stop stops the server with SIGINT, as an operator would (killing it after serverproc's
// timeout). It is safe to call twice.
func (s *serverProc) Stop() {
	_ = s.proc.Stop()
	_ = s.proc.Close()
}

// Metrics returns the server's unlabelled metrics and the sums of its labelled ones, by name.
func (s *serverProc) Metrics(ctx context.Context) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", s.URL+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("get metrics: %s", resp.Status)
	}
	return parseMetrics(resp.Body)
}

// parseMetrics reads the Prometheus text format, summing the series of each metric.
func parseMetrics(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, rest := line, ""
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name, rest = line[:i], line[i:]
		}
		if strings.HasPrefix(rest, "{") {
			j := strings.LastIndex(rest, "}")
			if j < 0 {
				return nil, fmt.Errorf("bad metric line %q", line)
			}
			rest = rest[j+1:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return nil, fmt.Errorf("bad metric line %q", line)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("bad metric line %q: %w", line, err)
		}
		out[name] += v
	}
	return out, sc.Err()
}

// procStats is what /proc says of a process: resident memory now and at its peak, and CPU
// time used so far.
type procStats struct {
	RSS, PeakRSS int64 // bytes
	CPU          time.Duration
}

// clockTicks is USER_HZ, the unit of CPU times in /proc/PID/stat: 100 on every Linux
// architecture Go supports.
const clockTicks = 100

// readProc reads /proc/PID/status and /proc/PID/stat.
func readProc(pid int) (procStats, error) {
	var st procStats
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return st, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		f := strings.Fields(v) // "12345 kB"
		if len(f) != 2 || f[1] != "kB" {
			return st, fmt.Errorf("unexpected %s line %q", k, line)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return st, err
		}
		if k == "VmRSS" {
			st.RSS = n << 10
		} else {
			st.PeakRSS = n << 10
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return st, err
	}
	// The command name, field 2, is in parentheses and may hold spaces: count from after it.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return st, fmt.Errorf("unexpected /proc/%d/stat %q", pid, s)
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state); utime is field 14, stime 15
	if len(f) < 13 {
		return st, fmt.Errorf("unexpected /proc/%d/stat %q", pid, s)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return st, fmt.Errorf("unexpected /proc/%d/stat %q", pid, s)
	}
	st.CPU = time.Duration(utime+stime) * time.Second / clockTicks
	return st, nil
}

// listenerPid returns the process that listens on TCP 127.0.0.1:port, found through
// /proc/net/tcp and the processes' socket file descriptors; 0 when there is none.
func listenerPid(port int) int {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return 0
	}
	want := fmt.Sprintf("0100007F:%04X", port)
	inode := ""
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
		if len(f) > 9 && f[1] == want && f[3] == "0A" {
			inode = f[9]
			break
		}
	}
	if inode == "" {
		return 0
	}
	target := "socket:[" + inode + "]"
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		fds, _ := os.ReadDir(filepath.Join("/proc", p.Name(), "fd"))
		for _, fd := range fds {
			if l, _ := os.Readlink(filepath.Join("/proc", p.Name(), "fd", fd.Name())); l == target {
				return pid
			}
		}
	}
	return 0
}

// cpuOf returns the CPU time process pid has used; 0 when it cannot be read.
func cpuOf(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	st, err := readProc(pid)
	if err != nil {
		return 0
	}
	return st.CPU
}
