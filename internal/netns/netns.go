// Package netns makes Linux network namespaces joined to this machine's own by veth pairs, so
// that a test can run a process in one and cut it off the network and heal it again: the
// partition chaos scenario (package chaos) cuts the active dagflow server off from Consul
// while it still reaches Nomad.
//
// A Namespace is created with New and gets links with AddLink: each link is a veth pair, one
// end in this machine's namespace (the host end, address 10.213.N.1/30), the other in the
// namespace (10.213.N.2/30). The namespace has no other route, so its processes reach the host
// only over the links, and nothing they send leaves the machine. Agents listening on the host's
// loopback are made reachable through a link with Forward. Cut takes a link's host end down:
// packets on it are dropped silently both ways, as on a real partition, and a blackhole route
// for the link's prefix, set up with it, keeps the host from sending them anywhere else (its
// default route, off the machine). Heal brings it up again; connections that were stalled go
// on where they stopped.
//
// Everything is done with the iproute2 `ip` command, as root; Check says what is missing when
// it cannot work. Names carry the ID of the process that made them: Close removes a namespace
// with its links and routes, RemoveAll what this process made, and Sweep what processes that
// died without cleaning up left behind.
package netns

import "errors"

var (
	// ErrUnsupported is returned where network namespaces do not exist (not Linux).
	ErrUnsupported = errors.New("network namespaces need Linux")
)
