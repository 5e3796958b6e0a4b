//go:build unix

// Package serverproc runs `dagflow server` instances as child processes against a given Consul
// and Nomad, for the tests and benchmarks that kill, freeze and restart them: the chaos
// scenarios (package chaos) and the failover benchmark.
//
// Each instance gets a generated configuration file, a free port on 127.0.0.1 that it keeps
// across restarts (so its URL and its Consul service ID stay the same), and a log file that
// every start appends to. On Linux an instance is killed when the process that started it
// dies, so a test binary killed by a timeout leaves no server behind.
//
//	bin, err := serverproc.Build(ctx, dir)
//	a, err := serverproc.Start(ctx, serverproc.Options{Binary: bin, ConsulAddr: c, NomadAddr: n})
//	b, err := serverproc.Start(ctx, serverproc.Options{Binary: bin, ConsulAddr: c, NomadAddr: n})
//	leader, err := serverproc.WaitActive(ctx, a, b)
//	leader.Kill()
//	next, err := serverproc.WaitActive(ctx, a, b)
package serverproc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dagflow/dagflow/api"
	"github.com/dagflow/dagflow/internal/devstack"
	"github.com/dagflow/dagflow/internal/netns"
)

const (
	// DefaultStartTimeout bounds how long Start and Restart wait for a new process to answer
	// its health check. A server answers within a second; the margin is for a loaded machine.
	DefaultStartTimeout = 30 * time.Second

	// DefaultStopTimeout is how long Stop waits after SIGINT before it kills the process. A
	// leader releases its lock at once, then waits for its requests in flight (at most 10 s).
	DefaultStopTimeout = 15 * time.Second

	// healthTimeout bounds one health request. A paused or overloaded instance must not hold
	// up the search for the active one.
	healthTimeout = time.Second

	// pollInterval is how often WaitActive asks the instances.
	pollInterval = 50 * time.Millisecond
)

var (
	// ErrNotRunning is returned by Kill, Pause and Resume when the process has exited, and
	// by Restart after Close.
	ErrNotRunning = errors.New("server process is not running")

	// ErrNoActive is wrapped by Active when no instance reports itself active.
	ErrNoActive = errors.New("no instance is active")
)

// Options configures one instance.
type Options struct {
	// Binary is the dagflow binary to run. Required; see Build.
	Binary string

	// ConsulAddr ("127.0.0.1:8500") and NomadAddr ("http://127.0.0.1:4646") are the agents
	// the instance talks to. Required.
	ConsulAddr string
	NomadAddr  string

	// KVPrefix, JobPrefix and ServiceName name the installation the instance belongs to;
	// instances with the same values form one cluster. Empty: dagflow's defaults.
	KVPrefix    string
	JobPrefix   string
	ServiceName string

	// LogLevel is the server's log level; empty: "debug", which failovers are read with.
	LogLevel string

	// Config is HCL appended to the generated configuration file: leader {}, retention {},
	// history {}, acl {} blocks. It must not set what the file already sets (listen,
	// kv_prefix, job_prefix, service_name, log_level, consul, nomad).
	Config string

	// Env holds NAME=value settings added to the process's environment, which is otherwise
	// this process's.
	Env []string

	// Dir is where the configuration file and the log go; empty: a new temp dir, removed by
	// Close.
	Dir string

	// Netns, when set, runs the instance in that network namespace (`ip netns exec`), where it
	// listens on every address, on its port. Consul's health check and the other instances
	// then reach it at AdvertiseHost, and URL names ReachHost (this process's way in, which
	// may be another link). Both are required with Netns.
	Netns         *netns.Namespace
	AdvertiseHost string
	ReachHost     string
}

// Server is one `dagflow server` child process, which can be killed, stopped, frozen and
// started again on the same address.
//
// Its methods may be called from any goroutine; they are serialized. Close kills the process
// and removes what it created: call it when done (tests: t.Cleanup).
type Server struct {
	opts    Options
	addr    string // where it is reached (127.0.0.1:port, or ReachHost:port), the same for every start
	port    string
	dir     string
	tempDir bool // dir was created here and Close removes it
	client  *api.Client

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{} // closed when the current process has exited
	starts int
	closed bool
}

// Start writes the instance's configuration, starts its process and returns once it answers
// its health check, within DefaultStartTimeout. It does not wait for the instance to lead or
// to stand by: see WaitActive. ctx bounds the start only, not the process's life.
func Start(ctx context.Context, o Options) (*Server, error) {
	if o.Binary == "" || o.ConsulAddr == "" || o.NomadAddr == "" {
		return nil, errors.New("start dagflow server: Binary, ConsulAddr and NomadAddr are required")
	}
	if o.Netns != nil && (o.AdvertiseHost == "" || o.ReachHost == "") {
		return nil, errors.New("start dagflow server: Netns needs AdvertiseHost and ReachHost")
	}
	if o.LogLevel == "" {
		o.LogLevel = "debug"
	}
	s := &Server{opts: o, dir: o.Dir}
	if s.dir == "" {
		dir, err := os.MkdirTemp("", "serverproc-")
		if err != nil {
			return nil, fmt.Errorf("start dagflow server: %w", err)
		}
		s.dir, s.tempDir = dir, true
	} else if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return nil, fmt.Errorf("start dagflow server: %w", err)
	}
	addr, err := freeAddr()
	if err != nil {
		s.removeDir()
		return nil, fmt.Errorf("start dagflow server: %w", err)
	}
	s.addr, s.port = addr, portOf(addr)
	if o.Netns != nil {
		s.addr = net.JoinHostPort(o.ReachHost, s.port)
	}
	if s.client, err = api.NewClient(&api.Config{Address: s.URL(), HTTPClient: &http.Client{Timeout: healthTimeout}}); err != nil {
		s.removeDir()
		return nil, err
	}
	if err := os.WriteFile(s.ConfigPath(), []byte(s.config()), 0o600); err != nil {
		s.removeDir()
		return nil, fmt.Errorf("start dagflow server: write config: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.start(ctx); err != nil {
		s.removeDir()
		return nil, err
	}
	return s, nil
}

// config renders the configuration file.
func (s *Server) config() string {
	o := s.opts
	var b strings.Builder
	if o.Netns != nil {
		fmt.Fprintf(&b, "listen    = %q\nadvertise = %q\n", net.JoinHostPort("0.0.0.0", s.port), net.JoinHostPort(o.AdvertiseHost, s.port))
	} else {
		fmt.Fprintf(&b, "listen    = %q\n", s.addr)
	}
	fmt.Fprintf(&b, "log_level = %q\n", o.LogLevel)
	if o.KVPrefix != "" {
		fmt.Fprintf(&b, "kv_prefix = %q\n", o.KVPrefix)
	}
	if o.JobPrefix != "" {
		fmt.Fprintf(&b, "job_prefix = %q\n", o.JobPrefix)
	}
	if o.ServiceName != "" {
		fmt.Fprintf(&b, "service_name = %q\n", o.ServiceName)
	}
	fmt.Fprintf(&b, "\nconsul {\n  address = %q\n}\n\nnomad {\n  address = %q\n}\n", o.ConsulAddr, o.NomadAddr)
	if o.Config != "" {
		b.WriteString("\n" + strings.TrimSpace(o.Config) + "\n")
	}
	return b.String()
}

// start runs a new process and waits for its health check. s.mu is held.
func (s *Server) start(ctx context.Context) error {
	log, err := os.OpenFile(s.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("start dagflow server: open log: %w", err)
	}
	defer log.Close() // the child has its own descriptor
	s.starts++
	fmt.Fprintf(log, "==> serverproc: start %d of %s at %s\n", s.starts, s.addr, time.Now().UTC().Format(time.RFC3339Nano))
	argv := []string{s.opts.Binary, "server", "-config", s.ConfigPath()}
	if s.opts.Netns != nil {
		if argv, err = s.opts.Netns.Command(argv...); err != nil {
			return fmt.Errorf("start dagflow server: %w", err)
		}
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), s.opts.Env...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Dir = s.dir
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start dagflow server: %w", err)
	}
	done := make(chan struct{})
	s.cmd, s.done = cmd, done
	go func() {
		_ = cmd.Wait() // sets cmd.ProcessState, read once done is closed
		close(done)
	}()

	ctx, cancel := context.WithTimeout(ctx, DefaultStartTimeout)
	defer cancel()
	var lastErr error
	for {
		hctx, hcancel := context.WithTimeout(ctx, healthTimeout)
		_, lastErr = s.client.Status().Health(hctx)
		hcancel()
		if lastErr == nil {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("dagflow server %s exited before it answered (%v); log: %s\n%s",
				s.addr, cmd.ProcessState, s.LogPath(), s.tail(20))
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			<-done
			return fmt.Errorf("dagflow server %s did not answer within %s (last error: %v); log: %s\n%s",
				s.addr, DefaultStartTimeout, lastErr, s.LogPath(), s.tail(20))
		case <-time.After(pollInterval):
		}
	}
}

// tail returns the last n lines of the log.
func (s *Server) tail(n int) string {
	b, err := os.ReadFile(s.LogPath())
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// URL returns the instance's base URL, http://127.0.0.1:PORT (in a namespace,
// http://ReachHost:PORT), the same across restarts.
func (s *Server) URL() string { return "http://" + s.addr }

// Addr returns the address the instance is reached at, 127.0.0.1:PORT (in a namespace,
// ReachHost:PORT).
func (s *Server) Addr() string { return s.addr }

// LogPath returns the file the instance's output goes to, appended to by every start.
func (s *Server) LogPath() string { return filepath.Join(s.dir, "server-"+s.port+".log") }

// ConfigPath returns the instance's configuration file.
func (s *Server) ConfigPath() string { return filepath.Join(s.dir, "server-"+s.port+".hcl") }

// Pid returns the process ID of the current process, or 0 before the first start.
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Running reports whether the current process has not exited (it may be paused).
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running()
}

func (s *Server) running() bool {
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// ExitState returns how the last process ended; nil while it runs.
func (s *Server) ExitState() *os.ProcessState {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.running() {
		return nil
	}
	return s.cmd.ProcessState
}

// Starts returns how many processes were started for the instance: 1 after Start, one more
// per Restart.
func (s *Server) Starts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.starts
}

// Kill kills the process with SIGKILL, as a crash would, and waits until it has exited. Its
// Consul registration and, if it led, its lock session stay behind until Consul's health
// check finds it gone.
func (s *Server) Kill() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running() {
		return ErrNotRunning
	}
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill dagflow server %s: %w", s.addr, err)
	}
	<-s.done
	return nil
}

// Stop stops the process with SIGINT (resuming it first if it is paused), as an operator's
// Ctrl-C does: a leader hands its lock over before it exits. After DefaultStopTimeout it is
// killed, and Stop says so. Stopping an instance that is not running does nothing.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stop()
}

func (s *Server) stop() error {
	if !s.running() {
		return nil
	}
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	_ = s.cmd.Process.Signal(syscall.SIGCONT) // a paused process gets its SIGINT now
	select {
	case <-s.done:
		return nil
	case <-time.After(DefaultStopTimeout):
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
	return fmt.Errorf("stop dagflow server %s: still running %s after SIGINT, killed it", s.addr, DefaultStopTimeout)
}

// Pause freezes the process with SIGSTOP: it keeps its sockets but answers nothing, so
// Consul's health check of it fails and, if it led, its lock session is invalidated. Resume
// lets it go on from where it stopped.
//
// Pause returns once every thread of the process has stopped: the kernel stops a process
// asynchronously, and on a loaded machine it may still answer a request sent right after
// the signal.
func (s *Server) Pause() error {
	if err := s.signal(syscall.SIGSTOP, "pause"); err != nil {
		return err
	}
	s.mu.Lock()
	pid, done := s.cmd.Process.Pid, s.done
	s.mu.Unlock()
	deadline := time.Now().Add(DefaultStopTimeout)
	for !stopped(pid) {
		select {
		case <-done:
			return ErrNotRunning
		case <-time.After(time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pause dagflow server %s: still not stopped %s after SIGSTOP", s.addr, DefaultStopTimeout)
		}
	}
	return nil
}

// stopped reports whether every thread of process pid is stopped, as /proc shows it.
func stopped(pid int) bool {
	stats, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	if err != nil || len(stats) == 0 {
		return false
	}
	for _, path := range stats {
		b, err := os.ReadFile(path)
		// The state follows the command name, in parentheses that it may itself contain.
		i := bytes.LastIndexByte(b, ')')
		if err != nil || i < 0 || i+2 >= len(b) || (b[i+2] != 'T' && b[i+2] != 't') {
			return false
		}
	}
	return true
}

// Resume lets a paused process go on with SIGCONT.
func (s *Server) Resume() error { return s.signal(syscall.SIGCONT, "resume") }

func (s *Server) signal(sig syscall.Signal, what string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running() {
		return ErrNotRunning
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("%s dagflow server %s: %w", what, s.addr, err)
	}
	return nil
}

// Restart stops the process as Stop does, if it runs, and starts a new one on the same
// address and configuration, returning once it answers its health check.
func (s *Server) Restart(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrNotRunning
	}
	if err := s.stop(); err != nil {
		return err
	}
	return s.start(ctx)
}

// Close kills the process, if it runs, and removes the temp dir Start created. It is safe to
// call twice.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.running() {
		_ = s.cmd.Process.Signal(syscall.SIGKILL)
		<-s.done
	}
	return s.removeDir()
}

func (s *Server) removeDir() error {
	if !s.tempDir {
		return nil
	}
	return os.RemoveAll(s.dir)
}

// Role asks the instance's health check whether it is "active" or "standby". A paused,
// stopped or overloaded instance gives an error after at most a second.
func (s *Server) Role(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	h, err := s.client.Status().Health(ctx)
	if err != nil {
		return "", err
	}
	return h.Role, nil
}

// Active returns the instance among servers that reports itself active now, asking them all
// at once. The error wraps ErrNoActive when none does; when several do (a deposed leader that
// has not noticed yet, for a moment), it says which.
func Active(ctx context.Context, servers ...*Server) (*Server, error) {
	roles := make([]string, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Go(func() { roles[i], _ = s.Role(ctx) })
	}
	wg.Wait()
	var active []*Server
	for i, r := range roles {
		if r == "active" {
			active = append(active, servers[i])
		}
	}
	switch len(active) {
	case 0:
		return nil, ErrNoActive
	case 1:
		return active[0], nil
	}
	urls := make([]string, len(active))
	for i, s := range active {
		urls[i] = s.URL()
	}
	return nil, fmt.Errorf("%d instances report active: %s", len(active), strings.Join(urls, ", "))
}

// WaitActive polls servers until exactly one of them reports itself active, and returns it,
// or returns an error when ctx ends first. Leave out of servers an instance that is paused or
// known to be deposed, unless it may lead again.
func WaitActive(ctx context.Context, servers ...*Server) (*Server, error) {
	for {
		s, err := Active(ctx, servers...)
		if err == nil {
			return s, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for an active instance: %w (last: %v)", ctx.Err(), err)
		case <-time.After(pollInterval):
		}
	}
}

// BinaryEnv names the environment variable that, when set, gives Build a dagflow binary to
// use instead of building one: `make chaos` builds bin/dagflow once and passes it on.
const BinaryEnv = "DAGFLOW_BINARY"

// Build builds ./cmd/dagflow of the module holding the working directory into dir and returns
// the binary's path; when the environment variable BinaryEnv is set, it returns its value
// instead, once it has checked that the file exists.
func Build(ctx context.Context, dir string) (string, error) {
	if bin := os.Getenv(BinaryEnv); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("dagflow binary from %s: %w", BinaryEnv, err)
		}
		return filepath.Abs(bin)
	}
	root, err := devstack.RepoRoot()
	if err != nil {
		return "", fmt.Errorf("build dagflow: %w", err)
	}
	bin := filepath.Join(dir, "dagflow")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/dagflow")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build dagflow: %w\n%s", err, out)
	}
	return bin, nil
}

// freeAddr returns a 127.0.0.1 address with a port free now, never handed out before in this
// process, to the agents devstack starts either.
func freeAddr() (string, error) {
	ports, err := devstack.FreePorts(1)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("127.0.0.1:%d", ports[0]), nil
}

func portOf(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return port
}
