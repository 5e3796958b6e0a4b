// Package config reads the dagflow server's configuration: an HCL file, over defaults taken
// from the environment variables HashiCorp tools share (CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN,
// NOMAD_ADDR, NOMAD_TOKEN, NOMAD_NAMESPACE, ...). A value set in the file wins over the
// environment, and command-line flags win over both.
package config

import (
	"fmt"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dagflow/dagflow/engine"
	"github.com/dagflow/dagflow/history"
	"github.com/dagflow/dagflow/nomadexec"
	"github.com/dagflow/dagflow/state"
)

// Defaults for a server whose file and environment say nothing.
const (
	// DefaultListen is loopback, so a server started by hand exposes nothing until the
	// operator picks an address.
	DefaultListen   = "127.0.0.1:8080"
	DefaultLogLevel = "info"
	// DefaultServiceName is the Consul service every instance registers, so that
	// active.dagflow.service.consul reaches the leader.
	DefaultServiceName = "dagflow"
	// DefaultCheckInterval is how often Consul checks an instance's health. The leader's
	// session is bound to this check, so it bounds how long a killed leader goes unnoticed.
	DefaultCheckInterval = time.Second
	// DefaultCheckTimeout is how long one health check may take. Shorter than the interval so
	// checks never queue up.
	DefaultCheckTimeout = 800 * time.Millisecond
	// DefaultDeregisterAfter removes an instance that stayed critical this long from Consul,
	// so crashed instances do not pile up in the catalog.
	DefaultDeregisterAfter = time.Minute
	// DefaultMemoryLimitPercent is the share of its Nomad task's memory (NOMAD_MEMORY_LIMIT)
	// a server takes as its soft memory limit when none is configured: the rest is for what
	// the Go runtime does not count (the binary's mapped code, the kernel's share), so the
	// garbage collector works harder before the task reaches the limit Nomad enforces.
	DefaultMemoryLimitPercent = 90
	// MinMemoryLimit is the smallest memory_limit accepted: below it a server with a few
	// hundred DAGs spends its time collecting garbage, and a limit without a unit ("300",
	// bytes) is the likelier mistake.
	MinMemoryLimit = 64 << 20
)

// Server is the configuration of one dagflow server.
type Server struct {
	Listen      string // address to serve HTTP on
	Advertise   string // address other instances and Consul's health check use; default Listen
	KVPrefix    string
	JobPrefix   string
	ServiceName string
	LogLevel    string
	LogJSON     bool
	Consul      Consul
	Nomad       Nomad
	Leader      Leader
	Retention   Retention
	ACL         ACL
	History     History

	// MemoryLimit is the Go runtime's soft memory limit in bytes (runtime/debug.SetMemoryLimit):
	// past it the garbage collector runs more often and returns memory to the system sooner.
	// 0 leaves the runtime's own (GOMEMLIMIT, else none); math.MaxInt64 is no limit ("off").
	// MemoryLimitFrom says where it came from: "memory_limit", "NOMAD_MEMORY_LIMIT" or "".
	MemoryLimit     int64
	MemoryLimitFrom string
}

// History says where long-term history goes (package history). An empty URL turns it off: the
// API and UI then show the runs Consul keeps (retention) and nothing older.
type History struct {
	// URL is the PostgreSQL connection URL, postgres://user:password@host:port/db. It holds a
	// secret: DAGFLOW_HISTORY_URL can carry it instead of the file.
	URL string
	// MaxLogBytes bounds how much of a try's stdout, and of its stderr, history keeps: the
	// start of a longer output is dropped and the log marked truncated.
	MaxLogBytes int
}

// ACL says what callers without a token may do. Every other call needs a token (see
// dagflow acl bootstrap).
type ACL struct {
	// AnonymousRole is the role of a request without a token: "" (nothing but health and the
	// UI's static files) or viewer, operator or admin.
	AnonymousRole string
}

// Retention says what the scheduler keeps, and for how long.
type Retention struct {
	KeepRuns   int           // finished runs kept in Consul per DAG
	PurgeAfter time.Duration // how long a finished try's Nomad job is kept before it is purged
	LogTail    int           // bytes of stdout, and of stderr, copied into Consul per try
}

// Consul says how to reach Consul. Empty fields keep the Consul client's own defaults, which
// read CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN and the other CONSUL_ variables.
type Consul struct {
	Address string
	Token   string
}

// Nomad says how to reach Nomad. Empty fields keep the Nomad client's defaults (NOMAD_ADDR,
// NOMAD_TOKEN, NOMAD_NAMESPACE, NOMAD_REGION).
type Nomad struct {
	Address   string
	Token     string
	Namespace string
	Region    string
	UIAddress string // the Nomad web UI the dagflow UI links to; empty: Address + "/ui"
}

// Leader tunes leader election; see package consullock for the trade-offs.
type Leader struct {
	CheckInterval   time.Duration
	CheckTimeout    time.Duration
	DeregisterAfter time.Duration
	LockDelay       time.Duration // zero: consullock's default
}

// file mirrors the HCL file; optional values are pointers so that "not set" is visible.
type file struct {
	Listen      *string        `hcl:"listen"`
	Advertise   *string        `hcl:"advertise"`
	KVPrefix    *string        `hcl:"kv_prefix"`
	JobPrefix   *string        `hcl:"job_prefix"`
	ServiceName *string        `hcl:"service_name"`
	LogLevel    *string        `hcl:"log_level"`
	LogJSON     *bool          `hcl:"log_json"`
	MemoryLimit *string        `hcl:"memory_limit"`
	Consul      *fileConsul    `hcl:"consul,block"`
	Nomad       *fileNomad     `hcl:"nomad,block"`
	Leader      *fileLeader    `hcl:"leader,block"`
	Retention   *fileRetention `hcl:"retention,block"`
	ACL         *fileACL       `hcl:"acl,block"`
	History     *fileHistory   `hcl:"history,block"`
}

type fileHistory struct {
	URL         *string `hcl:"url"`
	MaxLogBytes *int    `hcl:"max_log_bytes"`
}

type fileACL struct {
	AnonymousRole *string `hcl:"anonymous_role"`
}

type fileRetention struct {
	KeepRuns     *int    `hcl:"keep_runs"`
	PurgeAfter   *string `hcl:"purge_after"`
	LogTailBytes *int    `hcl:"log_tail_bytes"`
}

type fileConsul struct {
	Address *string `hcl:"address"`
	Token   *string `hcl:"token"`
}

type fileNomad struct {
	Address   *string `hcl:"address"`
	Token     *string `hcl:"token"`
	Namespace *string `hcl:"namespace"`
	Region    *string `hcl:"region"`
	UIAddress *string `hcl:"ui_address"`
}

type fileLeader struct {
	CheckInterval   *string `hcl:"check_interval"`
	CheckTimeout    *string `hcl:"check_timeout"`
	DeregisterAfter *string `hcl:"deregister_after"`
	LockDelay       *string `hcl:"lock_delay"`
}

// Default returns the configuration of a server with no file: defaults, then the environment
// (DAGFLOW_LISTEN, DAGFLOW_KV_PREFIX, DAGFLOW_JOB_PREFIX, DAGFLOW_HISTORY_URL; the Consul and
// Nomad variables are read by their clients). Under Nomad, without GOMEMLIMIT, the memory
// limit is DefaultMemoryLimitPercent of the task's memory (NOMAD_MEMORY_LIMIT, in MB).
func Default() *Server {
	limit, from := nomadMemoryLimit()
	return &Server{
		MemoryLimit: limit, MemoryLimitFrom: from,
		Listen:      envOr("DAGFLOW_LISTEN", DefaultListen),
		KVPrefix:    envOr("DAGFLOW_KV_PREFIX", state.DefaultPrefix),
		JobPrefix:   envOr("DAGFLOW_JOB_PREFIX", nomadexec.DefaultPrefix),
		ServiceName: DefaultServiceName,
		LogLevel:    DefaultLogLevel,
		Leader: Leader{
			CheckInterval:   DefaultCheckInterval,
			CheckTimeout:    DefaultCheckTimeout,
			DeregisterAfter: DefaultDeregisterAfter,
		},
		Retention: Retention{
			KeepRuns:   engine.DefaultKeepRuns,
			PurgeAfter: engine.DefaultPurgeAfter,
			LogTail:    engine.DefaultLogTail,
		},
		History: History{
			URL:         os.Getenv("DAGFLOW_HISTORY_URL"),
			MaxLogBytes: history.DefaultMaxLogBytes,
		},
	}
}

// nomadMemoryLimit is the default memory limit of a server run as a Nomad task: a share of
// the task's memory, unless GOMEMLIMIT sets the runtime's own.
func nomadMemoryLimit() (int64, string) {
	mb, err := strconv.ParseInt(os.Getenv("NOMAD_MEMORY_LIMIT"), 10, 64)
	if os.Getenv("GOMEMLIMIT") != "" || err != nil || mb <= 0 {
		return 0, ""
	}
	return (mb << 20) * DefaultMemoryLimitPercent / 100, "NOMAD_MEMORY_LIMIT"
}

// ParseSize reads a memory size as GOMEMLIMIT writes it: a whole number with one of the
// units B, KiB, MiB, GiB or TiB ("450MiB"), or "off" for no limit (math.MaxInt64).
func ParseSize(s string) (int64, error) {
	if s == "off" {
		return math.MaxInt64, nil
	}
	units := []struct {
		suffix string
		shift  uint
	}{{"KiB", 10}, {"MiB", 20}, {"GiB", 30}, {"TiB", 40}, {"B", 0}}
	for _, u := range units {
		num, ok := strings.CutSuffix(s, u.suffix)
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil || n < 0 || n > math.MaxInt64>>u.shift {
			break
		}
		return n << u.shift, nil
	}
	return 0, fmt.Errorf("%q is not a size such as \"450MiB\" or \"1GiB\" (units B, KiB, MiB, GiB, TiB) or \"off\"", s)
}

// formatSize writes n bytes in the largest unit ParseSize reads that divides it.
func formatSize(n int64) string {
	for _, u := range []struct {
		suffix string
		shift  uint
	}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}} {
		if n != 0 && n%(1<<u.shift) == 0 {
			return strconv.FormatInt(n>>u.shift, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}

// Load reads the file at path over Default. Every problem is reported, with its position; the
// files map is for printing the diagnostics with their source lines.
func Load(path string) (*Server, map[string]*hcl.File, hcl.Diagnostics) {
	p := hclparse.NewParser()
	f, diags := p.ParseHCLFile(path)
	if diags.HasErrors() {
		return nil, p.Files(), diags
	}
	var raw file
	diags = append(diags, gohcl.DecodeBody(f.Body, nil, &raw)...)
	if diags.HasErrors() {
		return nil, p.Files(), diags
	}
	c := Default()
	c.apply(&raw)
	diags = append(diags, c.durations(&raw, f.Body)...)
	diags = append(diags, c.memoryLimit(&raw, f.Body)...)
	diags = append(diags, c.validate(f.Body.MissingItemRange())...)
	return c, p.Files(), diags
}

func (c *Server) apply(f *file) {
	set(&c.Listen, f.Listen)
	set(&c.Advertise, f.Advertise)
	set(&c.KVPrefix, f.KVPrefix)
	set(&c.JobPrefix, f.JobPrefix)
	set(&c.ServiceName, f.ServiceName)
	set(&c.LogLevel, f.LogLevel)
	if f.LogJSON != nil {
		c.LogJSON = *f.LogJSON
	}
	if f.Consul != nil {
		set(&c.Consul.Address, f.Consul.Address)
		set(&c.Consul.Token, f.Consul.Token)
	}
	if f.Nomad != nil {
		set(&c.Nomad.Address, f.Nomad.Address)
		set(&c.Nomad.Token, f.Nomad.Token)
		set(&c.Nomad.Namespace, f.Nomad.Namespace)
		set(&c.Nomad.Region, f.Nomad.Region)
		set(&c.Nomad.UIAddress, f.Nomad.UIAddress)
	}
	if f.ACL != nil {
		set(&c.ACL.AnonymousRole, f.ACL.AnonymousRole)
	}
	if f.History != nil {
		set(&c.History.URL, f.History.URL)
		if f.History.MaxLogBytes != nil {
			c.History.MaxLogBytes = *f.History.MaxLogBytes
		}
	}
	if f.Retention != nil {
		if f.Retention.KeepRuns != nil {
			c.Retention.KeepRuns = *f.Retention.KeepRuns
		}
		if f.Retention.LogTailBytes != nil {
			c.Retention.LogTail = *f.Retention.LogTailBytes
		}
	}
}

// durations parses the leader and retention blocks' durations, reporting each bad one.
func (c *Server) durations(f *file, body hcl.Body) hcl.Diagnostics {
	var diags hcl.Diagnostics
	rng := body.MissingItemRange()
	parse := func(name string, s *string, out *time.Duration) {
		if s == nil {
			return
		}
		d, err := time.ParseDuration(*s)
		if err != nil || d < 0 {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Invalid duration",
				Detail:  fmt.Sprintf("%s must be a duration such as \"1s\" or \"500ms\", not %q.", name, *s),
				Subject: rng.Ptr(),
			})
			return
		}
		*out = d
	}
	if l := f.Leader; l != nil {
		parse("leader.check_interval", l.CheckInterval, &c.Leader.CheckInterval)
		parse("leader.check_timeout", l.CheckTimeout, &c.Leader.CheckTimeout)
		parse("leader.deregister_after", l.DeregisterAfter, &c.Leader.DeregisterAfter)
		parse("leader.lock_delay", l.LockDelay, &c.Leader.LockDelay)
	}
	if r := f.Retention; r != nil {
		parse("retention.purge_after", r.PurgeAfter, &c.Retention.PurgeAfter)
	}
	return diags
}

// memoryLimit parses memory_limit, reporting a bad one at its line.
func (c *Server) memoryLimit(f *file, body hcl.Body) hcl.Diagnostics {
	if f.MemoryLimit == nil {
		return nil
	}
	rng := body.MissingItemRange()
	if b, ok := body.(*hclsyntax.Body); ok && b.Attributes["memory_limit"] != nil {
		rng = b.Attributes["memory_limit"].Expr.Range()
	}
	n, err := ParseSize(*f.MemoryLimit)
	if err == nil && n < MinMemoryLimit {
		err = fmt.Errorf("%q is below the least accepted, %s", *f.MemoryLimit, formatSize(MinMemoryLimit))
	}
	if err != nil {
		return hcl.Diagnostics{{
			Severity: hcl.DiagError, Summary: "Invalid memory limit",
			Detail:  fmt.Sprintf("memory_limit: %v.", err),
			Subject: rng.Ptr(),
		}}
	}
	c.MemoryLimit, c.MemoryLimitFrom = n, "memory_limit"
	return nil
}

// validate checks what no later step would catch with a clear message.
func (c *Server) validate(rng hcl.Range) hcl.Diagnostics {
	var diags hcl.Diagnostics
	bad := func(detail string) {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid server configuration", Detail: detail, Subject: rng.Ptr()})
	}
	if err := c.Check(); err != nil {
		bad(err.Error())
	}
	return diags
}

// Check reports a configuration the server cannot run with, as flags may change a loaded file.
func (c *Server) Check() error {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("listen %q is not HOST:PORT: %v", c.Listen, err)
	}
	if hclog.LevelFromString(c.LogLevel) == hclog.NoLevel {
		return fmt.Errorf("log_level %q is not a level; use trace, debug, info, warn or error", c.LogLevel)
	}
	if err := nomadexec.ValidatePrefix(c.JobPrefix); err != nil {
		return fmt.Errorf("job_prefix: %w", err)
	}
	if c.Leader.CheckTimeout >= c.Leader.CheckInterval {
		return fmt.Errorf("leader.check_timeout (%s) must be shorter than leader.check_interval (%s)", c.Leader.CheckTimeout, c.Leader.CheckInterval)
	}
	if c.Leader.CheckInterval < 100*time.Millisecond {
		return fmt.Errorf("leader.check_interval (%s) is below 100ms, which Consul cannot keep", c.Leader.CheckInterval)
	}
	switch c.ACL.AnonymousRole {
	case "", "viewer", "operator", "admin":
	default:
		return fmt.Errorf("acl.anonymous_role %q is not a role; use \"\" (no access without a token), viewer, operator or admin", c.ACL.AnonymousRole)
	}
	if c.Retention.KeepRuns < 1 {
		return fmt.Errorf("retention.keep_runs (%d) must be at least 1: a DAG's latest run tells the scheduler where its schedule goes on", c.Retention.KeepRuns)
	}
	if c.Retention.LogTail < 1 || c.Retention.LogTail > engine.MaxLogTail {
		return fmt.Errorf("retention.log_tail_bytes (%d) must be from 1 to %d, so both tails of a try fit in one Consul value", c.Retention.LogTail, engine.MaxLogTail)
	}
	if c.History.URL != "" {
		if err := history.CheckURL(c.History.URL); err != nil {
			return fmt.Errorf("history.url: %w", err)
		}
	}
	if c.History.MaxLogBytes < 1 || c.History.MaxLogBytes > history.MaxLogBytes {
		return fmt.Errorf("history.max_log_bytes (%d) must be from 1 to %d", c.History.MaxLogBytes, history.MaxLogBytes)
	}
	return nil
}

// ConsulClient returns a Consul client for the configured address and token, over the
// client's defaults (CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN, ...).
func (c *Server) ConsulClient() (*consulapi.Client, error) {
	cc := consulapi.DefaultConfig()
	if c.Consul.Address != "" {
		cc.Address = c.Consul.Address
	}
	if c.Consul.Token != "" {
		cc.Token = c.Consul.Token
	}
	client, err := consulapi.NewClient(cc)
	if err != nil {
		return nil, fmt.Errorf("configure the Consul client: %w", err)
	}
	return client, nil
}

// NomadClient returns a Nomad client for NomadConfig.
func (c *Server) NomadClient() (*nomadapi.Client, error) {
	client, err := nomadapi.NewClient(c.NomadConfig())
	if err != nil {
		return nil, fmt.Errorf("configure the Nomad client: %w", err)
	}
	return client, nil
}

// NomadConfig returns the Nomad client configuration for the configured address, token,
// namespace and region, over the client's defaults (NOMAD_ADDR, NOMAD_TOKEN, ...).
func (c *Server) NomadConfig() *nomadapi.Config {
	nc := nomadapi.DefaultConfig()
	if c.Nomad.Address != "" {
		nc.Address = c.Nomad.Address
	}
	if c.Nomad.Token != "" {
		nc.SecretID = c.Nomad.Token
	}
	if c.Nomad.Namespace != "" {
		nc.Namespace = c.Nomad.Namespace
	}
	if c.Nomad.Region != "" {
		nc.Region = c.Nomad.Region
	}
	return nc
}

// AdvertiseURL is the base URL other parties reach this instance at.
func (c *Server) AdvertiseURL() string {
	addr := c.Advertise
	if addr == "" {
		addr = c.Listen
	}
	if strings.Contains(addr, "://") {
		return addr
	}
	return "http://" + addr
}

func set(dst *string, src *string) {
	if src != nil {
		*dst = *src
	}
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}
