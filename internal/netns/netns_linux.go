//go:build linux

package netns

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

const (
	// nsPrefix starts the name of every namespace made here: dagflow-PID-SEQ.
	nsPrefix = "dagflow-"

	// blackholeMetric is the metric of a link's blackhole route: worse than the kernel's route
	// to the link's prefix (metric 0), so it only carries traffic while the link is cut.
	blackholeMetric = "4213"

	// routeProto tags the blackhole routes made here, so Sweep can tell them from others.
	routeProto = "213"
)

var (
	// linkPool is where the links' /30 prefixes are taken from.
	linkPool = netip.MustParsePrefix("10.213.0.0/16")

	// Interface names are at most 15 bytes: df + PID (at most 7 digits) + - + SEQ + h or p.
	linkRe = regexp.MustCompile(`^df(\d+)-\d+[hp]$`)
	nsRe   = regexp.MustCompile(`^` + nsPrefix + `(\d+)-\d+$`)
)

var (
	mu       sync.Mutex
	nsSeq    int
	linkSeq  int
	made     = map[*Namespace]bool{} // what this process made and has not closed
	ipBinary string
)

// Namespace is a network namespace made by New, with the links AddLink gave it. Its methods
// may be called from any goroutine.
type Namespace struct {
	name string

	mu     sync.Mutex
	links  []*Link
	closed bool
}

// Link is one veth pair between this machine's namespace and a Namespace.
type Link struct {
	HostIP netip.Addr // the host end's address, 10.213.N.1
	PeerIP netip.Addr // the namespace end's address, 10.213.N.2

	ns         *Namespace
	host, peer string // interface names
	prefix     netip.Prefix
}

// Check reports why namespaces cannot be made here, naming what to install or how to run;
// nil when they can.
func Check() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("network namespaces and veth pairs need root: run the test as root (uid is %d)", os.Geteuid())
	}
	if _, err := ip(); err != nil {
		return err
	}
	if _, err := run("netns", "list"); err != nil {
		return fmt.Errorf("`ip netns` does not work here (a kernel without network namespaces?): %w", err)
	}
	return nil
}

// ip returns the path of the ip command.
func ip() (string, error) {
	mu.Lock()
	defer mu.Unlock()
	if ipBinary != "" {
		return ipBinary, nil
	}
	if p, err := exec.LookPath("ip"); err == nil {
		ipBinary = p
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"} {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			ipBinary = p
			return p, nil
		}
	}
	return "", errors.New("the ip command (iproute2) is missing: install it (apt-get install iproute2)")
}

// run runs ip with args and returns its output; the error quotes what it printed.
func run(args ...string) (string, error) {
	bin, err := ip()
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// New makes a network namespace with its loopback up and no other interface. Stale namespaces
// and links of dead processes are swept first.
func New() (*Namespace, error) {
	if err := Check(); err != nil {
		return nil, err
	}
	Sweep()
	mu.Lock()
	nsSeq++
	n := &Namespace{name: fmt.Sprintf("%s%d-%d", nsPrefix, os.Getpid(), nsSeq)}
	mu.Unlock()
	if _, err := run("netns", "add", n.name); err != nil {
		return nil, fmt.Errorf("create network namespace: %w", err)
	}
	if _, err := run("-n", n.name, "link", "set", "lo", "up"); err != nil {
		n.Close()
		return nil, fmt.Errorf("create network namespace: %w", err)
	}
	mu.Lock()
	made[n] = true
	mu.Unlock()
	return n, nil
}

// Name returns the namespace's name, as `ip netns` knows it.
func (n *Namespace) Name() string { return n.name }

// Command returns the argument list that runs argv inside the namespace (`ip netns exec`,
// which execs argv: the process started is argv's, with its PID).
func (n *Namespace) Command(argv ...string) ([]string, error) {
	bin, err := ip()
	if err != nil {
		return nil, err
	}
	return append([]string{bin, "netns", "exec", n.name}, argv...), nil
}

// AddLink adds a veth pair between the host and the namespace, on a /30 prefix of 10.213.0.0/16
// that no interface of the host uses, and brings both ends up.
func (n *Namespace) AddLink() (*Link, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, errors.New("add link: namespace is closed")
	}
	unlock, err := lockPool()
	if err != nil {
		return nil, err
	}
	defer unlock()
	prefix, err := freePrefix()
	if err != nil {
		return nil, err
	}
	mu.Lock()
	linkSeq++
	base := fmt.Sprintf("df%d-%d", os.Getpid(), linkSeq)
	mu.Unlock()
	hostIP := prefix.Addr().Next()
	l := &Link{ns: n, host: base + "h", peer: base + "p", prefix: prefix, HostIP: hostIP, PeerIP: hostIP.Next()}
	bits := "/" + strconv.Itoa(prefix.Bits())
	steps := [][]string{
		{"link", "add", l.host, "type", "veth", "peer", "name", l.peer},
		{"link", "set", l.peer, "netns", n.name},
		{"addr", "add", l.HostIP.String() + bits, "dev", l.host},
		{"route", "add", "blackhole", prefix.String(), "metric", blackholeMetric, "proto", routeProto},
		{"link", "set", l.host, "up"},
		{"-n", n.name, "addr", "add", l.PeerIP.String() + bits, "dev", l.peer},
		{"-n", n.name, "link", "set", l.peer, "up"},
	}
	for _, args := range steps {
		if _, err := run(args...); err != nil {
			l.remove()
			return nil, fmt.Errorf("add link to network namespace %s: %w", n.name, err)
		}
	}
	n.links = append(n.links, l)
	return l, nil
}

// Cut takes the link's host end down: whatever either side sends over it is dropped, without
// an error to the sender in the namespace (its route stays, without a carrier), and the host's
// own packets to the namespace end go to the blackhole route.
func (l *Link) Cut() error {
	if _, err := run("link", "set", l.host, "down"); err != nil {
		return fmt.Errorf("cut link %s: %w", l.host, err)
	}
	return nil
}

// Heal brings the link's host end up again, with its route.
func (l *Link) Heal() error {
	if _, err := run("link", "set", l.host, "up"); err != nil {
		return fmt.Errorf("heal link %s: %w", l.host, err)
	}
	return nil
}

// String names the link's host end and its addresses.
func (l *Link) String() string {
	return fmt.Sprintf("%s (%s, namespace end %s)", l.host, l.HostIP, l.PeerIP)
}

// remove deletes the veth pair (deleting one end deletes both) and the blackhole route.
// Errors are ignored: either may be gone already.
func (l *Link) remove() {
	_, _ = run("link", "del", l.host)
	_, _ = run("route", "del", "blackhole", l.prefix.String(), "metric", blackholeMetric, "proto", routeProto)
}

// Close removes the namespace with its links and routes. Processes still running in it lose
// their links with it. It is safe to call twice.
func (n *Namespace) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	n.closed = true
	mu.Lock()
	delete(made, n)
	mu.Unlock()
	for _, l := range n.links {
		l.remove()
	}
	if _, err := run("netns", "del", n.name); err != nil {
		return fmt.Errorf("remove network namespace: %w", err)
	}
	return nil
}

// RemoveAll closes every namespace this process made and did not close: for a test's cleanup,
// whatever happened to the code that made them.
func RemoveAll() {
	mu.Lock()
	var all []*Namespace
	for n := range made {
		all = append(all, n)
	}
	mu.Unlock()
	for _, n := range all {
		n.Close()
	}
}

// Sweep removes the namespaces, links and blackhole routes that processes made here and left
// behind when they died (a test binary killed by its timeout). Failures are ignored: it is
// best effort.
func Sweep() {
	unlock, err := lockPool()
	if err != nil {
		return
	}
	defer unlock()
	if entries, err := os.ReadDir("/run/netns"); err == nil {
		for _, e := range entries {
			if m := nsRe.FindStringSubmatch(e.Name()); m != nil && dead(m[1]) {
				_, _ = run("netns", "del", e.Name())
			}
		}
	}
	if out, err := run("-o", "link", "show"); err == nil {
		for _, line := range strings.Split(out, "\n") {
			// "12: df123-4h@if11: <BROADCAST,...> ..."
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			if m := linkRe.FindStringSubmatch(name); m != nil && dead(m[1]) {
				_, _ = run("link", "del", name)
			}
		}
	}
	used := usedPrefixes()
	if out, err := run("-4", "route", "show", "type", "blackhole", "proto", routeProto); err == nil {
		for _, line := range strings.Split(out, "\n") {
			// "blackhole 10.213.0.0/30 metric 4213"
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			p, err := netip.ParsePrefix(f[1])
			if err == nil && linkPool.Contains(p.Addr()) && !used[p] {
				_, _ = run("route", "del", "blackhole", p.String(), "metric", blackholeMetric, "proto", routeProto)
			}
		}
	}
}

// dead reports whether no process has the ID pid.
func dead(pid string) bool {
	n, err := strconv.Atoi(pid)
	if err != nil || n <= 0 {
		return false
	}
	return errors.Is(syscall.Kill(n, 0), syscall.ESRCH)
}

// usedPrefixes returns the /30 prefixes of linkPool that an interface of the host has an
// address in.
func usedPrefixes() map[netip.Prefix]bool {
	used := map[netip.Prefix]bool{}
	out, err := run("-4", "-o", "addr", "show")
	if err != nil {
		return used
	}
	for _, line := range strings.Split(out, "\n") {
		// "5: eth0    inet 10.213.0.1/30 scope global eth0 ..."
		f := strings.Fields(line)
		for i := 0; i+1 < len(f); i++ {
			if f[i] != "inet" {
				continue
			}
			p, err := netip.ParsePrefix(f[i+1])
			if err == nil && linkPool.Contains(p.Addr()) {
				q, _ := p.Addr().Prefix(30)
				used[q] = true
			}
		}
	}
	return used
}

// freePrefix returns the first /30 of linkPool that neither an address nor a route of the host
// uses. The pool lock is held.
func freePrefix() (netip.Prefix, error) {
	used := usedPrefixes()
	if out, err := run("-4", "route", "show", "table", "all"); err == nil {
		for _, line := range strings.Split(out, "\n") {
			for _, f := range strings.Fields(line) {
				p, err := netip.ParsePrefix(f)
				if err != nil {
					if a, aerr := netip.ParseAddr(f); aerr == nil {
						p = netip.PrefixFrom(a, 32)
					} else {
						continue
					}
				}
				if linkPool.Contains(p.Addr()) {
					q, _ := p.Addr().Prefix(30)
					used[q] = true
				}
			}
		}
	}
	for a := linkPool.Addr(); linkPool.Contains(a); {
		p := netip.PrefixFrom(a, 30)
		if !used[p] {
			return p, nil
		}
		for range 4 {
			a = a.Next()
		}
	}
	return netip.Prefix{}, fmt.Errorf("no free /30 left in %s", linkPool)
}

// lockPool takes the machine-wide lock that AddLink and Sweep hold while they pick prefixes
// and remove what is stale, and returns its release.
func lockPool() (func(), error) {
	path := filepath.Join(os.TempDir(), "dagflow-netns.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}
