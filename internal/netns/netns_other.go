//go:build !linux

package netns

import "net/netip"

// Namespace is a network namespace; see the Linux build.
type Namespace struct{}

// Link is one veth pair; see the Linux build.
type Link struct {
	HostIP, PeerIP netip.Addr
}

// Check returns ErrUnsupported.
func Check() error { return ErrUnsupported }

// New returns ErrUnsupported.
func New() (*Namespace, error) { return nil, ErrUnsupported }

// Name returns "".
func (n *Namespace) Name() string { return "" }

// Command returns ErrUnsupported.
func (n *Namespace) Command(argv ...string) ([]string, error) { return nil, ErrUnsupported }

// AddLink returns ErrUnsupported.
func (n *Namespace) AddLink() (*Link, error) { return nil, ErrUnsupported }

// Close does nothing.
func (n *Namespace) Close() error { return nil }

// Cut returns ErrUnsupported.
func (l *Link) Cut() error { return ErrUnsupported }

// Heal returns ErrUnsupported.
func (l *Link) Heal() error { return ErrUnsupported }

// String returns "".
func (l *Link) String() string { return "" }

// RemoveAll does nothing.
func RemoveAll() {}

// Sweep does nothing.
func Sweep() {}
