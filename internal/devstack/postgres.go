package devstack

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultPostgresStartTimeout bounds how long StartPostgres waits for the server to take
// connections. initdb and the first start take about 2 s here.
const DefaultPostgresStartTimeout = 60 * time.Second

// PostgresOptions configures StartPostgres.
type PostgresOptions struct {
	Port   int       // 0: a free port
	Logger io.Writer // server output; nil: discarded
}

// Postgres is a throwaway PostgreSQL server: a fresh cluster (initdb, trust authentication,
// fsync off) in a temp dir, listening on 127.0.0.1 only, with a superuser named postgres.
//
// PostgreSQL refuses to run as root; when this process is root, initdb and the server run as
// the system user postgres, which owns the temp dir.
//
// Down and Up stop and start the server on the same port and data, for tests of an outage.
// Stop, Down and Up may be called from any goroutine; they are serialized.
type Postgres struct {
	Addr string // "127.0.0.1:PORT"

	agent
	bin     string
	logger  io.Writer
	prepare []func(*exec.Cmd)
}

// StartPostgres creates a new cluster in a temp dir and starts a server on it, returning when it
// takes connections. ctx bounds the start only: call Stop.
func StartPostgres(ctx context.Context, opts PostgresOptions) (*Postgres, error) {
	bin, err := postgresBinary("postgres")
	if err != nil {
		return nil, err
	}
	initdb, err := postgresBinary("initdb")
	if err != nil {
		return nil, err
	}
	sweepStale()
	dir, err := os.MkdirTemp("", "devstack-postgres-")
	if err != nil {
		return nil, fmt.Errorf("create postgres temp dir: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		removeDir(dir)
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	p := &Postgres{agent: agent{name: "postgres", dir: dir, lock: lock}, bin: bin, logger: opts.Logger}
	fail := func(err error) (*Postgres, error) {
		removeDir(dir)
		closeLock(lock)
		return nil, err
	}
	if os.Geteuid() == 0 {
		asUser, err := runAs(dir, "postgres")
		if err != nil {
			return fail(fmt.Errorf("start postgres: it refuses to run as root, and %w", err))
		}
		p.prepare = append(p.prepare, asUser)
	}
	cmd := exec.CommandContext(ctx, initdb, "-D", p.dataDir(), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync")
	cmd.Dir = dir
	for _, f := range p.prepare {
		f(cmd)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("initdb: %w\n%s", err, lastLines(out, outputTailLines)))
	}
	for attempt := 1; ; attempt++ {
		port := opts.Port
		if port == 0 {
			free, err := FreePorts(1)
			if err != nil {
				return fail(err)
			}
			port = free[0]
		}
		p.Addr = "127.0.0.1:" + strconv.Itoa(port)
		err = p.start(ctx, port)
		if err == nil {
			return p, nil
		}
		if !retryable(err, opts.Port) || attempt == startAttempts {
			return fail(err)
		}
	}
}

// postgresBinary finds a PostgreSQL program as Binary does, then where Debian's packages put
// it, which is not on PATH.
func postgresBinary(name string) (string, error) {
	bin, err := Binary(name)
	if err == nil {
		return bin, nil
	}
	found, _ := filepath.Glob(filepath.Join("/usr/lib/postgresql", "*", "bin", name))
	if len(found) > 0 {
		return found[len(found)-1], nil
	}
	return "", err
}

func (p *Postgres) dataDir() string { return filepath.Join(p.dir, "data") }

// URL returns the connection URL of database db as the superuser.
func (p *Postgres) URL(db string) string {
	return "postgres://postgres@" + p.Addr + "/" + db + "?sslmode=disable"
}

// CreateDatabase creates an empty database named name and returns its URL.
func (p *Postgres) CreateDatabase(ctx context.Context, name string) (string, error) {
	conn, err := pgx.Connect(ctx, p.URL("postgres"))
	if err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return p.URL(name), nil
}

// start runs the server on port and waits until it takes connections. The socket goes in the
// temp dir: the default one, /var/run/postgresql, may not exist or be writable.
func (p *Postgres) start(ctx context.Context, port int) error {
	args := []string{"-D", p.dataDir(), "-p", strconv.Itoa(port), "-k", p.dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off"}
	proc, err := startProcess("postgres", p.bin, args, p.dir, p.logger, p.prepare...)
	if err != nil {
		return err
	}
	if err := proc.waitReady(ctx, DefaultPostgresStartTimeout, func(ctx context.Context) error {
		conn, err := pgx.Connect(ctx, p.URL("postgres"))
		if err != nil {
			return err
		}
		return conn.Close(ctx)
	}); err != nil {
		return err
	}
	p.proc = proc
	return nil
}

// Down stops the server (a fast shutdown: clients are disconnected) and keeps its data, so Up
// can bring it back. It is a no-op when the server is down already.
func (p *Postgres) Down() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return fmt.Errorf("stop postgres: %w", ErrStopped)
	}
	if p.proc == nil {
		return nil
	}
	err := p.proc.stop(DefaultStopTimeout)
	p.proc = nil
	if err != nil {
		return fmt.Errorf("stop postgres: %w", err)
	}
	return nil
}

// Up starts the server again after Down, on the same port and data, returning when it takes
// connections. It is a no-op when the server is up.
func (p *Postgres) Up(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return fmt.Errorf("start postgres: %w", ErrStopped)
	}
	if p.proc != nil {
		return nil
	}
	_, port, _ := strings.Cut(p.Addr, ":")
	n, _ := strconv.Atoi(port)
	if err := p.start(ctx, n); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	return nil
}

// Stop shuts the server down and removes its temp dir. It is safe to call twice and on nil.
func (p *Postgres) Stop() error {
	if p == nil {
		return nil
	}
	return p.stop()
}
