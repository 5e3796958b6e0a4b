//go:build linux

package netns

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestCutHeal makes a namespace with a link, reaches an echo server on the host's loopback from
// inside through a Forwarder, cuts the link (the namespace's connection attempt times out, the
// host routes the namespace end to the blackhole), heals it (reached again), and checks that
// Close leaves nothing behind.
func TestCutHeal(t *testing.T) {
	if err := Check(); err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Fatalf("the test reaches the host from the namespace with bash's /dev/tcp: %v", err)
	}
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { echo.Close() })
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, _ := bufio.NewReader(c).ReadString('\n')
				c.Write([]byte("echo " + line))
			}()
		}
	}()

	n, err := New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(RemoveAll)
	l, err := n.AddLink()
	if err != nil {
		t.Fatal(err)
	}
	f, err := Forward(l.HostIP.String()+":0", echo.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	_, port, _ := net.SplitHostPort(f.Addr())

	// reach says hi through the forwarder from inside the namespace, within 2 s.
	reach := func() (string, error) {
		script := "exec 3<>/dev/tcp/" + l.HostIP.String() + "/" + port + " && echo hi >&3 && read -r line <&3 && echo \"$line\""
		argv, err := n.Command("timeout", "2", "bash", "-c", script)
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	if got, err := reach(); err != nil || got != "echo hi" {
		t.Fatalf("before the cut: %q, %v; want \"echo hi\"", got, err)
	}
	if f.LastFromClient().IsZero() {
		t.Error("LastFromClient is zero after a request")
	}

	if err := l.Cut(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if got, err := reach(); err == nil {
		t.Fatalf("through the cut link: %q, no error", got)
	}
	if took := time.Since(start); took < time.Second {
		t.Errorf("a connection over the cut link failed after %s: it must time out (packets dropped), not be refused", took)
	}
	// The link's own route went with it; only the blackhole is left for its prefix.
	out, err := run("-4", "route", "show", l.prefix.String())
	if err != nil || !strings.HasPrefix(strings.TrimSpace(out), "blackhole") || strings.Count(strings.TrimSpace(out), "\n") > 0 {
		t.Errorf("while cut, the host's routes to %s are %q (%v); want the blackhole only", l.prefix, out, err)
	}

	if err := l.Heal(); err != nil {
		t.Fatal(err)
	}
	var got string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if got, err = reach(); err == nil && got == "echo hi" {
			break
		}
	}
	if got != "echo hi" {
		t.Fatalf("after the heal: %q, %v", got, err)
	}

	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/run/netns/" + n.Name()); !os.IsNotExist(err) {
		t.Errorf("namespace %s still exists after Close (%v)", n.Name(), err)
	}
	if out, _ := run("-o", "link", "show"); strings.Contains(out, l.host) {
		t.Errorf("link %s still exists after Close", l.host)
	}
	if out, _ := run("-4", "route", "show", "type", "blackhole", "proto", routeProto); strings.Contains(out, l.prefix.String()) {
		t.Errorf("blackhole route %s still exists after Close", l.prefix)
	}
}
