package netns

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Forwarder accepts TCP connections on an address of the host (a link's host end) and relays
// each to a target (an agent on the host's loopback), so a process in a namespace reaches an
// agent that listens on loopback only. It relays bytes as they come: when the link is cut,
// the connections through it stall, as they would with the agent behind a partition.
type Forwarder struct {
	ln     net.Listener
	target string
	last   atomic.Int64 // UnixNano of the last bytes relayed from a client to the target

	mu     sync.Mutex
	conns  map[net.Conn]bool
	closed bool
	wg     sync.WaitGroup
}

// Forward listens on listen ("10.213.0.1:0": a free port) and relays every connection to
// target. Close stops it.
func Forward(listen, target string) (*Forwarder, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("forward %s to %s: %w", listen, target, err)
	}
	f := &Forwarder{ln: ln, target: target, conns: map[net.Conn]bool{}}
	f.wg.Add(1)
	go f.accept()
	return f, nil
}

// Addr returns the address the forwarder listens on.
func (f *Forwarder) Addr() string { return f.ln.Addr().String() }

// LastFromClient returns when bytes last went from a client to the target: the last request
// that reached the agent. Zero before any.
func (f *Forwarder) LastFromClient() time.Time {
	ns := f.last.Load()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

func (f *Forwarder) accept() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		f.wg.Add(1)
		go f.relay(c)
	}
}

// relay copies between client c and a new connection to the target until either side ends.
func (f *Forwarder) relay(c net.Conn) {
	defer f.wg.Done()
	t, err := net.DialTimeout("tcp", f.target, 5*time.Second)
	if err != nil {
		c.Close()
		return
	}
	if !f.track(c, t) {
		return
	}
	defer f.untrack(c, t)
	done := make(chan struct{}, 2)
	go func() {
		_, _ = io.Copy(t, &stamped{r: c, last: &f.last})
		// Half-close: an HTTP client that sent its request still reads the answer.
		if tc, ok := t.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}()
	go func() {
		_, _ = io.Copy(c, t)
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}()
	<-done
	<-done
}

func (f *Forwarder) track(cs ...net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	for _, c := range cs {
		f.conns[c] = true
	}
	return true
}

func (f *Forwarder) untrack(cs ...net.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range cs {
		c.Close()
		delete(f.conns, c)
	}
}

// Close stops listening, closes every relayed connection and waits for the relays to end. It
// is safe to call twice.
func (f *Forwarder) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	err := f.ln.Close()
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
	return err
}

// stamped is a reader that records when it last returned bytes.
type stamped struct {
	r    io.Reader
	last *atomic.Int64
}

func (s *stamped) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 {
		s.last.Store(time.Now().UnixNano())
	}
	return n, err
}
