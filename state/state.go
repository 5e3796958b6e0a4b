// Package state keeps dagflow's state in Consul KV: the catalog of applied DAG and queue
// versions, and every version ever applied.
//
// Everything lives under a prefix P (DefaultPrefix unless configured), so two installations with
// different prefixes share one Consul without touching each other:
//
//	P + "catalog/head"                   which generation of the catalog is current
//	P + "catalog/gen/<id>/<i>"           a part of one generation's entries, immutable
//	P + "dags/<name>/versions/<hash>"    an applied DAG version, immutable
//	P + "queues/<name>/versions/<hash>"  an applied queue version, immutable
//
// The catalog (which DAG and queue versions are applied) has no single-key ceiling: each apply
// writes a new generation of immutable chunks, then switches the small head key to it with a
// check-and-set on the ModifyIndex it was planned against. That one write is the apply, so it is
// atomic for readers, and a concurrent apply is detected instead of overwritten. A store
// written before generations holds the catalog in the single key P + "catalog"; it reads as
// before, and the first apply replaces it.
// Versions are addressed by spec.Hash of their definition and never deleted, because runs stay
// pinned to the version they started with.
package state

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	consulapi "github.com/hashicorp/consul/api"
)

// DefaultPrefix is the KV prefix of an installation that names none. It ends in "/" so the keys
// below it read as a folder in the Consul UI.
const DefaultPrefix = "dagflow/"

// maxValueSize is Consul's default kv_max_value_size (raft's suggested maximum entry size). A
// server may be configured differently; a write over its actual limit is reported as ErrTooLarge
// too, from Consul's 413 answer.
const maxValueSize = 512 << 10

// blockingWait is the wait time of blocking queries. Consul caps it at 10 minutes; a shorter
// wait lets a caller notice sooner that the agent it talks to went away.
const blockingWait = time.Minute

var (
	// ErrConflict means the catalog changed between reading the base an apply was planned
	// against and writing the new one: another apply won the race.
	ErrConflict = errors.New("the applied DAGs changed since this plan was made; run plan again")

	// ErrNotFound means a DAG or queue version, or any version of a name, is not stored.
	ErrNotFound = errors.New("not found")

	// ErrTooLarge means a value is over Consul's 512 KB limit for one KV entry.
	ErrTooLarge = errors.New("over Consul's 512 KB limit for one KV value")
)

// Store reads and writes dagflow's state under one KV prefix of one Consul cluster.
//
// A Store is safe for concurrent use. It keeps no cache: every read asks Consul, with
// ?consistent for reads that a decision depends on.
type Store struct {
	client *consulapi.Client
	kv     *consulapi.KV
	txn    *consulapi.Txn
	prefix string

	versions versionCache // the DAG versions in use, shared by their readers
}

// New returns a Store that keeps its keys under prefix, such as "dagflow/" or
// "team-a/dagflow". The prefix is normalized to end in "/".
func New(client *consulapi.Client, prefix string) (*Store, error) {
	if client == nil {
		return nil, errors.New("create state store: consul client is nil")
	}
	p, err := normalizePrefix(prefix)
	if err != nil {
		return nil, fmt.Errorf("create state store: %w", err)
	}
	return &Store{client: client, kv: client.KV(), txn: client.Txn(), prefix: p}, nil
}

// Consul returns the Consul client the store uses, for what else the leader asks Consul
// (sensors' keys and services).
func (s *Store) Consul() *consulapi.Client { return s.client }

// Prefix returns the normalized KV prefix of the store, ending in "/".
func (s *Store) Prefix() string { return s.prefix }

// normalizePrefix checks prefix and appends the trailing "/". Empty segments ("a//b") and a
// leading "/" are refused: Consul would take them, but the keys would not match what users
// type into `consul kv get`, and "/x" and "x" would silently be different installations.
func normalizePrefix(prefix string) (string, error) {
	const want = `want a Consul KV path such as "dagflow/" or "team-a/dagflow/": not empty, no leading "/", no empty or "."/".." segments, no spaces`
	if prefix == "" {
		return "", fmt.Errorf("invalid prefix %q: %s", prefix, want)
	}
	if strings.HasPrefix(prefix, "/") {
		return "", fmt.Errorf("invalid prefix %q: %s", prefix, want)
	}
	p := strings.TrimSuffix(prefix, "/")
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", fmt.Errorf("invalid prefix %q: %s", prefix, want)
		}
	}
	for _, r := range p {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return "", fmt.Errorf("invalid prefix %q: %s", prefix, want)
		}
	}
	return p + "/", nil
}

// checkName refuses names that would escape their place in the key layout. The DAG language
// already restricts names; this guards callers that build definitions by hand.
func checkName(kind, name string) error {
	if name == "" {
		return fmt.Errorf("%s name is empty", kind)
	}
	if strings.ContainsAny(name, "/") || name == "." || name == ".." {
		return fmt.Errorf("%s name %q: must not contain \"/\" or be \".\" or \"..\"", kind, name)
	}
	return nil
}

func (s *Store) catalogKey() string { return s.prefix + "catalog" }

func (s *Store) versionsPrefix(kind, name string) string {
	return s.prefix + kind + "s/" + name + "/versions/"
}

func (s *Store) versionKey(kind, name, version string) string {
	return s.versionsPrefix(kind, name) + version
}

func (s *Store) readOpts(ctx context.Context) *consulapi.QueryOptions {
	return (&consulapi.QueryOptions{RequireConsistent: true}).WithContext(ctx)
}

func (s *Store) writeOpts(ctx context.Context) *consulapi.WriteOptions {
	return (&consulapi.WriteOptions{}).WithContext(ctx)
}

// isTooLarge reports whether err is Consul refusing a request body as too large (HTTP 413),
// which happens when the server's kv_max_value_size is below the default this package checks.
func isTooLarge(err error) bool {
	var se consulapi.StatusError
	return errors.As(err, &se) && se.Code == 413
}
