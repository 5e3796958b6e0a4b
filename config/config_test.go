package config_test

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"

	"github.com/dagflow/dagflow/config"
	"github.com/dagflow/dagflow/state"
)

func write(t *testing.T, src string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "server.hcl")
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoad(t *testing.T) {
	t.Setenv("DAGFLOW_KV_PREFIX", "from-env/")
	t.Setenv("DAGFLOW_LISTEN", "")
	t.Setenv("NOMAD_MEMORY_LIMIT", "1024")
	c, _, diags := config.Load(write(t, `
listen       = "0.0.0.0:9090"
advertise    = "10.0.0.5:9090"
job_prefix   = "etl-"
log_level    = "debug"
log_json     = true
memory_limit = "450MiB"

consul {
  address = "127.0.0.1:8501"
  token   = "secret"
}

nomad {
  address    = "http://127.0.0.1:4647"
  namespace  = "etl"
  ui_address = "https://nomad.example.com/ui"
}

acl {
  anonymous_role = "viewer"
}

leader {
  check_interval = "2s"
  check_timeout  = "1s"
  lock_delay     = "500ms"
}

retention {
  keep_runs      = 7
  purge_after    = "1h"
  log_tail_bytes = 1024
}

history {
  url           = "postgres://dagflow:pw@db.example.com:5432/dagflow"
  max_log_bytes = 4096
}
`))
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	want := &config.Server{
		Listen: "0.0.0.0:9090", Advertise: "10.0.0.5:9090",
		KVPrefix: "from-env/", JobPrefix: "etl-", ServiceName: "dagflow",
		LogLevel: "debug", LogJSON: true,
		Consul:      config.Consul{Address: "127.0.0.1:8501", Token: "secret"},
		Nomad:       config.Nomad{Address: "http://127.0.0.1:4647", Namespace: "etl", UIAddress: "https://nomad.example.com/ui"},
		ACL:         config.ACL{AnonymousRole: "viewer"},
		Leader:      config.Leader{CheckInterval: 2 * time.Second, CheckTimeout: time.Second, DeregisterAfter: config.DefaultDeregisterAfter, LockDelay: 500 * time.Millisecond},
		Retention:   config.Retention{KeepRuns: 7, PurgeAfter: time.Hour, LogTail: 1024},
		History:     config.History{URL: "postgres://dagflow:pw@db.example.com:5432/dagflow", MaxLogBytes: 4096},
		MemoryLimit: 450 << 20, MemoryLimitFrom: "memory_limit",
	}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("Load (-want +got):\n%s", diff)
	}
	if got := c.AdvertiseURL(); got != "http://10.0.0.5:9090" {
		t.Errorf("AdvertiseURL = %q", got)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string
	}{
		{name: "syntax", src: `listen = `, want: "Missing expression"},
		{name: "unknown attribute", src: `lisen = "x"`, want: `An argument named "lisen" is not expected here. Did you mean "listen"?`},
		{name: "wrong type", src: `log_json = "yes please"`, want: "Unsuitable value type"},
		{name: "bad listen", src: `listen = "8080"`, want: `listen "8080" is not HOST:PORT`},
		{name: "bad level", src: `log_level = "loud"`, want: `log_level "loud" is not a level`},
		{name: "bad duration", src: "leader {\n  check_interval = \"soon\"\n}", want: `leader.check_interval must be a duration`},
		{name: "timeout not below interval", src: "leader {\n  check_interval = \"1s\"\n  check_timeout = \"2s\"\n}", want: "must be shorter than leader.check_interval"},
		{name: "bad job prefix", src: `job_prefix = "a b"`, want: "job_prefix"},
		{name: "bad purge delay", src: "retention {\n  purge_after = \"later\"\n}", want: `retention.purge_after must be a duration`},
		{name: "no runs kept", src: "retention {\n  keep_runs = 0\n}", want: "retention.keep_runs (0) must be at least 1"},
		{name: "bad anonymous role", src: "acl {\n  anonymous_role = \"root\"\n}", want: `acl.anonymous_role "root" is not a role`},
		{name: "bad history url", src: "history {\n  url = \"postgres://u:hunter2@db:port/x\"\n}", want: "history.url: cannot parse"},
		{name: "history log limit", src: "history {\n  max_log_bytes = 0\n}", want: "history.max_log_bytes (0) must be from 1 to"},
		{name: "memory limit without unit", src: `memory_limit = "300"`, want: `memory_limit: "300" is not a size such as "450MiB"`},
		{name: "memory limit in MB", src: `memory_limit = "300MB"`, want: `memory_limit: "300MB" is not a size`},
		{name: "memory limit negative", src: `memory_limit = "-1GiB"`, want: `memory_limit: "-1GiB" is not a size`},
		{name: "memory limit too large", src: `memory_limit = "99999999999TiB"`, want: `memory_limit: "99999999999TiB" is not a size`},
		{name: "memory limit too small", src: `memory_limit = "1MiB"`, want: `memory_limit: "1MiB" is below the least accepted, 64MiB`},
		{name: "memory limit not a string", src: `memory_limit = 300`, want: `memory_limit: "300" is not a size`},
		{name: "log tail too big", src: "retention {\n  log_tail_bytes = 10000000\n}", want: "retention.log_tail_bytes (10000000) must be from 1 to"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, files, diags := config.Load(write(t, tt.src))
			if !diags.HasErrors() {
				t.Fatal("no error")
			}
			if strings.Contains(diags.Error(), "hunter2") {
				t.Errorf("diagnostics quote a password: %s", diags.Error())
			}
			if !strings.Contains(diags.Error(), tt.want) {
				t.Errorf("diagnostics %q do not contain %q", diags.Error(), tt.want)
			}
			if diags[0].Subject == nil || !strings.HasSuffix(diags[0].Subject.Filename, "server.hcl") || files == nil {
				t.Errorf("diagnostic does not point into the file: %+v", diags[0])
			}
		})
	}
	if _, _, diags := config.Load(filepath.Join(t.TempDir(), "missing.hcl")); !diags.HasErrors() {
		t.Error("a missing file loaded")
	}
}

// TestMemoryLimit: where a server's soft memory limit comes from: the file, else GOMEMLIMIT
// (left to the runtime), else a share of its Nomad task's memory.
func TestMemoryLimit(t *testing.T) {
	tests := map[string]struct {
		file, nomad, gomemlimit string
		want                    int64
		from                    string
	}{
		"none":                      {},
		"nomad task":                {nomad: "512", want: 512 << 20 * config.DefaultMemoryLimitPercent / 100, from: "NOMAD_MEMORY_LIMIT"},
		"nomad task, GOMEMLIMIT":    {nomad: "512", gomemlimit: "300MiB"},
		"nomad task, bad variable":  {nomad: "lots"},
		"file":                      {file: `memory_limit = "1GiB"`, want: 1 << 30, from: "memory_limit"},
		"file over nomad":           {file: `memory_limit = "200MiB"`, nomad: "512", want: 200 << 20, from: "memory_limit"},
		"file over GOMEMLIMIT":      {file: `memory_limit = "200MiB"`, gomemlimit: "1GiB", want: 200 << 20, from: "memory_limit"},
		"file turns the limit off":  {file: `memory_limit = "off"`, nomad: "512", want: math.MaxInt64, from: "memory_limit"},
		"bytes":                     {file: `memory_limit = "104857600B"`, want: 100 << 20, from: "memory_limit"},
		"KiB":                       {file: `memory_limit = "102400KiB"`, want: 100 << 20, from: "memory_limit"},
		"file without memory_limit": {file: `log_level = "warn"`, nomad: "256", want: 256 << 20 * config.DefaultMemoryLimitPercent / 100, from: "NOMAD_MEMORY_LIMIT"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Setenv("NOMAD_MEMORY_LIMIT", tt.nomad)
			t.Setenv("GOMEMLIMIT", tt.gomemlimit)
			c := config.Default()
			if tt.file != "" {
				var diags hcl.Diagnostics
				if c, _, diags = config.Load(write(t, tt.file)); diags.HasErrors() {
					t.Fatal(diags.Error())
				}
			}
			if c.MemoryLimit != tt.want || c.MemoryLimitFrom != tt.from {
				t.Errorf("memory limit %d from %q, want %d from %q", c.MemoryLimit, c.MemoryLimitFrom, tt.want, tt.from)
			}
		})
	}
}

// TestMemoryLimitError: a bad memory_limit is reported at its line.
func TestMemoryLimitError(t *testing.T) {
	_, _, diags := config.Load(write(t, "log_level = \"info\"\nmemory_limit = \"lots\"\n"))
	if !diags.HasErrors() {
		t.Fatal("no error")
	}
	d := diags[0]
	if d.Summary != "Invalid memory limit" || d.Subject == nil || d.Subject.Start.Line != 2 {
		t.Errorf("diagnostic %q at %v, want \"Invalid memory limit\" on line 2", d.Summary, d.Subject)
	}
}

func TestDefaultFromEnvironment(t *testing.T) {
	t.Setenv("DAGFLOW_LISTEN", "127.0.0.1:7000")
	t.Setenv("DAGFLOW_KV_PREFIX", "")
	t.Setenv("DAGFLOW_JOB_PREFIX", "x-")
	c := config.Default()
	if c.Listen != "127.0.0.1:7000" || c.KVPrefix != state.DefaultPrefix || c.JobPrefix != "x-" {
		t.Errorf("Default() = %+v", c)
	}
	if err := c.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
}
