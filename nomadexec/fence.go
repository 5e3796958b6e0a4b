package nomadexec

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-cleanhttp"
	nomadapi "github.com/hashicorp/nomad/api"
)

// errPastDeadline is what a connection answers a write of a request past its deadline.
var errPastDeadline = errors.New("the request's deadline passed before it was written: not sending it")

// newClient returns a Nomad client for cfg whose connections can refuse to write a request
// past its deadline (see withWriteDeadline). cfg is not changed.
//
// A context deadline alone does not keep a request from leaving: a process frozen (SIGSTOP, a
// paused VM) while a request waits for a connection or sits in the transport wakes with every
// goroutine runnable at once, and the transport may write the request before it notices the
// expired context. The connection checks the clock itself, right before the bytes go out.
func newClient(cfg *nomadapi.Config) (*nomadapi.Client, error) {
	c := *cfg
	u, err := url.Parse(c.Address)
	if err != nil {
		return nil, fmt.Errorf("invalid Nomad address %q: %w", c.Address, err)
	}
	hc := cleanhttp.DefaultPooledClient()
	tr := hc.Transport.(*http.Transport)
	dial := tr.DialContext
	if u.Scheme == "unix" {
		// As the Nomad client itself does for a unix socket address.
		c.Address = "http://127.0.0.1"
		dial = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", u.EscapedPath())
		}
	}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &fencedConn{Conn: conn}, nil
	}
	// The Nomad client's own transport settings: HTTP/1 (its streaming endpoints need it).
	tr.TLSHandshakeTimeout = 10 * time.Second
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	tr.ForceAttemptHTTP2 = false
	if err := nomadapi.ConfigureTLS(hc, c.TLSConfig); err != nil {
		return nil, fmt.Errorf("configure TLS for Nomad: %w", err)
	}
	c.HttpClient = hc
	return nomadapi.NewClient(&c)
}

// fencedConn is a connection that refuses writes past the deadline of the request it carries,
// if that request set one (withWriteDeadline).
type fencedConn struct {
	net.Conn
	deadline atomic.Pointer[time.Time]
}

func (c *fencedConn) Write(b []byte) (int, error) {
	if d := c.deadline.Load(); d != nil && !time.Now().Before(*d) {
		return 0, errPastDeadline
	}
	return c.Conn.Write(b)
}

// withWriteDeadline returns ctx carrying a trace that arms the connection the request gets
// with ctx's deadline, so that none of the request is written after it, and disarms it when
// the answer starts: HTTP/1 writes one request at a time per connection, and a connection
// whose request fails or is canceled before an answer is closed, not reused. Without a
// deadline ctx is returned unchanged.
func withWriteDeadline(ctx context.Context) context.Context {
	deadline, ok := ctx.Deadline()
	if !ok {
		return ctx
	}
	var armed *fencedConn
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			conn := info.Conn
			if tc, ok := conn.(*tls.Conn); ok {
				conn = tc.NetConn()
			}
			if fc, ok := conn.(*fencedConn); ok {
				fc.deadline.Store(&deadline)
				armed = fc
			}
		},
		GotFirstResponseByte: func() {
			if armed != nil {
				armed.deadline.Store(nil)
			}
		},
	})
}
