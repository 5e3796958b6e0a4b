// Package history keeps dagflow's long-term history in PostgreSQL: every run, task instance
// and try the active server recorded, with the full logs of each try, long after the runs left
// Consul (see retention in docs/server.md). It is optional: a server without a history block
// keeps the runs Consul holds and nothing more.
//
// # Writing
//
// Only the active server writes, through a Recorder that the engine tells which runs changed.
// The Recorder reads those runs back from Consul, which stays the source of truth, and records
// them in one transaction per batch: rows are keyed by (DAG, run), (run, task) and (run, task,
// try), so recording a run again updates it, and history holds exactly one row per try however
// often, and by whichever leader, a run is recorded. Writing happens beside scheduling, never in
// its way: while PostgreSQL is down the Recorder keeps the changed runs' names and records them
// once it is back, and the engine keeps finished runs in Consul past its retention until history
// holds them, so nothing is lost in between.
//
// # Fencing
//
// Every write transaction first raises the fence row to the writer's epoch, or is refused with
// ErrDeposed when a newer epoch wrote already. Epochs come from Consul, where a leader raises a
// counter with a write fenced by its lock session when it starts recording, so a deposed
// leader's late writes are rejected as soon as its successor has written once.
//
// # Reading
//
// Every instance reads: the API and UI list, show and page through runs Consul no longer holds
// from here. Reads fail while PostgreSQL is down; callers then serve what Consul holds.
package history

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/tern/v2/migrate"
)

// versionTable is where the applied schema version is kept.
const versionTable = "history_schema_version"

// Bounds of a try's output kept per stream.
const (
	// DefaultMaxLogBytes keeps the whole output of all but unusually chatty tasks while a
	// history row stays cheap to read back.
	DefaultMaxLogBytes = 16 << 20
	// MaxLogBytes is the largest limit: one read from Nomad holds it in memory, twice per try.
	MaxLogBytes = 256 << 20
)

// connectTimeout bounds one connection attempt when the URL sets none, so a server whose
// PostgreSQL is unreachable learns it in seconds, not at the kernel's TCP timeout.
const connectTimeout = 5 * time.Second

// readPause is how long reads fail at once with ErrUnavailable after one could not connect.
// A host that drops packets instead of refusing them makes every connection attempt wait out
// connectTimeout, and every API page that reads history would wait with it; during the pause
// pages answer from Consul alone at once.
const readPause = 10 * time.Second

//go:embed migrations/*.sql
var migrations embed.FS

var (
	// ErrDeposed means a leader with a newer epoch wrote history: this writer is no longer
	// the leader and must stop writing.
	ErrDeposed = errors.New("history was written by a newer leader")

	// ErrNotMigrated means the database's schema is older than this dagflow's; the server
	// applies its migrations at start.
	ErrNotMigrated = errors.New("history database schema is not up to date")

	// ErrUnavailable means a read did not try: a recent one could not connect (readPause).
	ErrUnavailable = errors.New("history database did not answer a moment ago")
)

// DB is a connection pool to the history database. It connects lazily: Open succeeds while
// PostgreSQL is down, and each call fails until it is back. A DB is safe for concurrent use.
type DB struct {
	pool *pgxpool.Pool

	mu       sync.Mutex
	migrated bool // Migrate succeeded: the schema is current

	readMu     sync.Mutex
	readsAfter time.Time     // reads fail at once with ErrUnavailable until then
	readPause  time.Duration // readPause; tests shorten it
}

// CheckURL reports whether url is a PostgreSQL URL history can connect with. The error masks
// the password.
func CheckURL(url string) error {
	_, err := pgxpool.ParseConfig(url)
	return err
}

// Open returns a DB for the PostgreSQL URL (postgres://user:password@host:port/db?...). It
// checks the URL only; it does not connect.
func Open(url string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's message quotes the URL with its password masked.
		return nil, fmt.Errorf("history URL: %w", err)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = connectTimeout
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("history database: %w", err)
	}
	return &DB{pool: pool, readPause: readPause}, nil
}

// Close closes every connection. It is safe to call twice.
func (db *DB) Close() { db.pool.Close() }

// Target returns where the DB connects, without credentials: host:port/database.
func (db *DB) Target() string {
	c := db.pool.Config().ConnConfig
	return fmt.Sprintf("%s:%d/%s", c.Host, c.Port, c.Database)
}

// Migrate applies the migrations the database lacks, each in a transaction, under an advisory
// lock so servers starting together apply each once. It is safe to call again, and cheap
// once the schema is current.
func (db *DB) Migrate(ctx context.Context) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.migrated {
		return nil
	}
	err := db.withMigrator(ctx, func(m *migrate.Migrator) error { return m.Migrate(ctx) })
	if err != nil {
		return fmt.Errorf("migrate history database %s: %w", db.Target(), err)
	}
	db.migrated = true
	return nil
}

// Schema returns the schema version the database has and the one this dagflow needs, without
// changing anything: a database never migrated has version 0.
func (db *DB) Schema(ctx context.Context) (current, latest int, err error) {
	names, err := migrate.FindMigrations(migrationsDir())
	if err != nil {
		return 0, 0, fmt.Errorf("read embedded migrations: %w", err)
	}
	latest = len(names)
	var exists bool
	if err := db.paused(); err != nil {
		return 0, latest, err
	}
	if err := db.pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", versionTable).Scan(&exists); err != nil {
		return 0, latest, db.readDone(fmt.Errorf("read history schema version from %s: %w", db.Target(), err))
	}
	if !exists {
		return 0, latest, nil
	}
	var v int32
	if err := db.pool.QueryRow(ctx, "SELECT version FROM "+versionTable).Scan(&v); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return 0, latest, fmt.Errorf("read history schema version from %s: %w", db.Target(), err)
	}
	return int(v), latest, nil
}

// ready fails with ErrNotMigrated until Migrate has succeeded, applying the migrations first
// if they were not, so a server whose PostgreSQL was down at start catches up when it is back.
func (db *DB) ready(ctx context.Context) error {
	if err := db.Migrate(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrNotMigrated, err)
	}
	return nil
}

// reading starts a read: it fails at once while reads pause (see paused), else makes sure the
// schema is current (see ready).
func (db *DB) reading(ctx context.Context) error {
	if err := db.paused(); err != nil {
		return err
	}
	return db.readDone(db.ready(ctx))
}

// paused fails with ErrUnavailable while reads pause after a failure to connect.
func (db *DB) paused() error {
	db.readMu.Lock()
	until := db.readsAfter
	db.readMu.Unlock()
	if wait := time.Until(until); wait > 0 {
		return fmt.Errorf("%w: not trying %s again for %s", ErrUnavailable, db.Target(), wait.Round(time.Second))
	}
	return nil
}

// readDone returns a read's error after noting it: one that could not connect pauses reads.
func (db *DB) readDone(err error) error {
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		db.readMu.Lock()
		db.readsAfter = time.Now().Add(db.readPause)
		db.readMu.Unlock()
	}
	return err
}

func (db *DB) withMigrator(ctx context.Context, f func(*migrate.Migrator) error) error {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	m, err := migrate.NewMigrator(ctx, conn.Conn(), versionTable)
	if err != nil {
		return err
	}
	if err := m.LoadMigrations(migrationsDir()); err != nil {
		return err
	}
	return f(m)
}

func migrationsDir() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // the embedded tree always has it
	}
	return sub
}
