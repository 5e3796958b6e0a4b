// Package devstack starts real Consul and Nomad agents in dev mode as child processes, for
// integration tests and for `make dev`. Chaos tests, which restart agents, run them durable
// instead (ConsulOptions.Durable, NomadOptions.Durable): not in dev mode, so that a restart
// keeps their state.
//
// Every agent listens only on 127.0.0.1, on ports picked free at start, and keeps its data in a
// temporary directory removed by Stop, so any number of agents can run side by side on one
// machine. The binaries come from <repo root>/bin (installed by `make tools`) or from PATH; see
// Binary.
//
// Agents run in sessions of their own, so a Ctrl-C in a terminal reaches the program that
// started them and not the agents themselves: that program stops them with Stop. On Linux an
// agent is also killed when the process that started it dies, so a test binary killed by a
// timeout leaves no agent behind, and the next start in any process sweeps up what such a run
// left: temp dirs, and the task processes of its Nomad agents.
package devstack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	// DefaultConsulStartTimeout bounds how long StartConsul waits for a leader. A dev agent
	// elects itself in about 2 s; the margin is for a loaded CI machine running many packages.
	DefaultConsulStartTimeout = 30 * time.Second

	// DefaultNomadStartTimeout bounds how long StartNomad waits for a ready client node. A dev
	// agent needs about 10 s (fingerprinting dominates), so 60 s leaves room for a loaded machine.
	DefaultNomadStartTimeout = 60 * time.Second

	// DefaultStopTimeout is how long Stop waits after SIGINT before it kills an agent. A Nomad
	// dev agent stops its allocations on the way out, which takes a few seconds.
	DefaultStopTimeout = 15 * time.Second

	// startAttempts is how often a start is tried with fresh ports when the agent dies because a
	// port it was given was taken between picking it and binding it.
	startAttempts = 3

	// outputTailLines is how many lines of agent output an error message quotes.
	outputTailLines = 30
)

var (
	// ErrStopped is returned by Restart after Stop.
	ErrStopped = errors.New("agent is stopped")
)

// portInUseError is an early exit because a port the agent was given is taken. A port picked
// free can be taken by another process before the agent binds it, so starts retry on this
// error with fresh ports, unless the taken port is one the caller chose.
type portInUseError struct {
	port int // 0 when the output did not say which
	err  error
}

func (e *portInUseError) Error() string { return e.err.Error() }
func (e *portInUseError) Unwrap() error { return e.err }

// retryable reports whether err is a port conflict that fresh ports can fix: the taken port is
// not fixedPort (the caller's choice; 0 for none).
func retryable(err error, fixedPort int) bool {
	var pe *portInUseError
	return errors.As(err, &pe) && (fixedPort == 0 || pe.port != fixedPort)
}

var (
	// portInUseRe finds the port in Go's bind error, which both agents print as it is.
	portInUseRe = regexp.MustCompile(`127\.0\.0\.1:(\d+): bind: address already in use`)

	// fatalRe finds the line where an agent says why it gives up: Consul logs "Error starting
	// agent", Nomad prints "==> Error starting http server" and the like, followed by
	// tab-indented multierror lines (its log lines are indented with spaces). Both go on to log
	// their shutdown, which can push that line out of the last lines quoted.
	fatalRe = regexp.MustCompile(`(?m)^.*(==> Error|Error starting).*$(\n\t.*$)*`)
)

// Binary returns the path of a tool binary ("consul", "nomad"): <repo root>/bin/NAME if it
// exists, else NAME on PATH. The repo root is the nearest directory at or above the working
// directory that holds a go.mod, which is also where `go test` runs a package from.
//
// The error tells the user to run `make tools`, which builds the binaries into ./bin.
func Binary(name string) (string, error) {
	var tried []string
	if root, err := RepoRoot(); err == nil {
		p := filepath.Join(root, "bin", name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
		tried = append(tried, p)
	}
	p, err := exec.LookPath(name)
	if err == nil {
		return p, nil
	}
	tried = append(tried, "PATH")
	return "", fmt.Errorf("find %s binary (looked in %s): %w; run `make tools` to build it into ./bin",
		name, strings.Join(tried, " and "), err)
}

// RepoRoot returns the nearest directory at or above the working directory holding a go.mod:
// where `go test` runs a package from, below the repository root.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("get working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod at or above the working directory")
		}
		dir = parent
	}
}

// handedOut holds every port FreePorts returned in this process. Agents bind their ports a
// moment after FreePorts closes its probe sockets, so without this two agents started at the
// same time could be handed the same port.
var (
	handedOutMu sync.Mutex
	handedOut   = map[int]bool{}
)

// FreePorts returns n distinct ports free on 127.0.0.1 for both TCP and UDP (Serf and DNS use
// both). Another process can still take one before the agent binds it; callers retry with new
// ports when the agent reports an address in use.
func FreePorts(n int) ([]int, error) {
	handedOutMu.Lock()
	defer handedOutMu.Unlock()

	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	ports := make([]int, 0, n)
	for tries := 0; len(ports) < n; tries++ {
		if tries > 100*n {
			return nil, fmt.Errorf("pick %d free ports: gave up after %d tries", n, tries)
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("pick a free port: %w", err)
		}
		// Keep every probe open until all ports are picked so the kernel never returns the same
		// port twice within one call.
		closers = append(closers, l)
		port := l.Addr().(*net.TCPAddr).Port
		if handedOut[port] {
			continue
		}
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue // TCP free but UDP taken: useless for Serf and DNS
		}
		closers = append(closers, u)
		ports = append(ports, port)
	}
	for _, p := range ports {
		handedOut[p] = true
	}
	return ports, nil
}

// tailBuffer keeps the last bytes written to it, so errors can quote the agent's last words.
// It is safe for concurrent use.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

// Write implements io.Writer; it never fails.
func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

// lines returns the last n lines written, or "(no output)".
func (t *tailBuffer) lines(n int) string {
	return lastLines(t.bytes(), n)
}

// bytes returns a copy of what the buffer holds.
func (t *tailBuffer) bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return bytes.Clone(t.buf)
}

// lastLines returns the last n lines of b, or "(no output)" when b is blank.
func lastLines(b []byte, n int) string {
	b = bytes.TrimRight(b, "\n")
	if len(bytes.TrimSpace(b)) == 0 {
		return "(no output)"
	}
	i := len(b)
	for ; n > 0 && i > 0; n-- {
		i = bytes.LastIndexByte(b[:i], '\n')
		if i < 0 {
			i = 0
			break
		}
	}
	return string(bytes.TrimLeft(b[i:], "\n"))
}

// process is one run of an agent binary. It is not safe for concurrent use: Consul and Nomad
// serialize access to it.
type process struct {
	name string // "consul" or "nomad", for messages
	cmd  *exec.Cmd
	tail *tailBuffer
	done chan struct{} // closed when the process has exited and its output is drained
	err  error         // Wait's result, set before done is closed
}

// startProcess runs bin with args, copying its output to out (nil: discarded) and to a tail
// buffer for error messages. prepare, when given, adjusts the command before it starts.
func startProcess(name, bin string, args []string, dir string, out io.Writer, prepare ...func(*exec.Cmd)) (*process, error) {
	if out == nil {
		out = io.Discard
	}
	p := &process{name: name, tail: &tailBuffer{max: 64 << 10}, done: make(chan struct{})}
	w := io.MultiWriter(out, p.tail)
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout = w
	cmd.Stderr = w
	// Children an agent spawns (Nomad's executors, tasks) can inherit its output pipe; without
	// a delay bound Wait would block until the last of them exits.
	cmd.WaitDelay = 5 * time.Second
	setProcAttr(cmd)
	for _, f := range prepare {
		f(cmd)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s agent: %w", name, err)
	}
	p.cmd = cmd
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has exited.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// earlyExitError describes an agent that exited while it was expected to be starting: the
// line where it says why, if it did, then its last lines of output.
func (p *process) earlyExitError() error {
	out := p.tail.bytes()
	msg := fmt.Sprintf("%s agent exited before it was ready (%v)", p.name, p.err)
	if all := fatalRe.FindAll(out, -1); len(all) > 0 {
		msg += ": " + strings.TrimSpace(string(all[len(all)-1]))
	}
	err := errors.New(msg + "\nlast output:\n" + lastLines(out, outputTailLines))
	if bytes.Contains(out, []byte("address already in use")) {
		pe := &portInUseError{err: err}
		if m := portInUseRe.FindSubmatch(out); m != nil {
			pe.port, _ = strconv.Atoi(string(m[1]))
		}
		return pe
	}
	return err
}

// stop asks the agent to shut down with SIGINT and kills its process group when it has not
// exited after timeout. Whatever the agent left running in its group is killed afterwards. An
// exit status after SIGINT is not an error: agents report interrupted shutdowns differently.
func (p *process) stop(timeout time.Duration) error {
	defer killGroup(p.cmd.Process.Pid)
	if p.exited() {
		return nil
	}
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		// Already gone, or a platform without SIGINT: a kill is all that is left.
		killGroup(p.cmd.Process.Pid)
		<-p.done
		return nil
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-p.done:
		return nil
	case <-timer.C:
	}
	killGroup(p.cmd.Process.Pid)
	<-p.done
	return fmt.Errorf("stop %s agent: still running %s after SIGINT, killed it; last output:\n%s",
		p.name, timeout, p.tail.lines(outputTailLines))
}

// waitReady polls ready until it returns nil, the process exits, ctx ends or timeout passes.
// On any failure it stops the process, so a failed start leaves nothing running.
func (p *process) waitReady(ctx context.Context, timeout time.Duration, ready func(context.Context) error) error {
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	lastErr := errors.New("not checked yet")
	for {
		// A check gets a short deadline of its own so one hung request cannot eat the budget,
		// and ends when the agent exits: whatever holds its port then will not answer.
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		go func() {
			select {
			case <-p.done:
				ccancel()
			case <-cctx.Done():
			}
		}()
		lastErr = ready(cctx)
		ccancel()
		if lastErr == nil {
			return nil
		}
		select {
		case <-p.done:
			p.stop(0) // kills whatever the agent left in its process group
			return p.earlyExitError()
		case <-ctx.Done():
			p.stop(DefaultStopTimeout)
			if err := parent.Err(); err != nil {
				return fmt.Errorf("wait for %s agent: %w", p.name, err)
			}
			return fmt.Errorf("%s agent not ready after %s (last check: %v); last output:\n%s",
				p.name, timeout, lastErr, p.tail.lines(outputTailLines))
		case <-tick.C:
		}
	}
}

// closeLock releases an owner lock taken by lockDir; nil is fine.
func closeLock(f *os.File) {
	if f != nil {
		f.Close()
	}
}

// agent is what Consul and Nomad share: a process owning a temp dir.
type agent struct {
	name string
	dir  string   // temp dir holding the config file and data dir; removed by stop
	lock *os.File // owner lock on dir, released by stop; see sweepStale

	mu      sync.Mutex
	proc    *process
	stopped bool
}

// stop shuts the process down with SIGINT, kills it after DefaultStopTimeout, and removes the
// temp dir. Later calls do nothing.
func (a *agent) stop() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopped {
		return nil
	}
	a.stopped = true
	var errs []error
	if a.proc != nil {
		errs = append(errs, a.proc.stop(DefaultStopTimeout))
		a.proc = nil
	}
	if err := removeDir(a.dir); err != nil {
		errs = append(errs, fmt.Errorf("remove %s temp dir: %w", a.name, err))
	}
	closeLock(a.lock)
	return errors.Join(errs...)
}

// kill ends the agent as a crash of its machine would: SIGKILL to it and its process group,
// and to every process working in its temp dir, which on a Nomad client are the tasks it runs
// (they live in sessions of their own and would outlive the agent alone). The temp dir stays,
// so restart brings the agent back on its ports and data dir. Killing an agent that is down
// does nothing; after stop it returns ErrStopped.
func (a *agent) kill() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopped {
		return fmt.Errorf("kill %s agent: %w", a.name, ErrStopped)
	}
	if a.proc == nil {
		return nil
	}
	killGroup(a.proc.cmd.Process.Pid)
	<-a.proc.done
	killProcessesIn(a.dir)
	a.proc = nil
	return nil
}
