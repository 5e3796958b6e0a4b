package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/hashicorp/cli"
	consulapi "github.com/hashicorp/consul/api"
	"github.com/hashicorp/hcl/v2"
	nomadapi "github.com/hashicorp/nomad/api"
	"golang.org/x/term"

	"github.com/dagflow/dagflow/config"
	"github.com/dagflow/dagflow/hcl/spec"
	"github.com/dagflow/dagflow/state"
)

// Exit codes shared by the commands.
const (
	exitOK      = 0
	exitError   = 1
	exitChanges = 2 // plan -detailed-exitcode: the plan has changes
	exitQueued  = 2 // an action no active server carried out in time: it stays queued
)

// Meta holds what every command shares: the UI and the options that reach Consul, Nomad and
// the dagflow API.
type Meta struct {
	UI cli.Ui

	noColor  bool
	kvPrefix string
	vars     varList
	address  string
	token    string
}

// Option groups a command's flag set can have.
const (
	colorFlags   = 1 << iota // -no-color
	varFlags                 // -var NAME=VALUE
	clusterFlags             // -kv-prefix
	apiFlags                 // -address, -token
)

// flagSet returns a flag set with the option groups a command takes.
func (m *Meta) flagSet(name string, help func() string, groups int) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() { m.UI.Error(help()) }
	if groups&colorFlags != 0 {
		fs.BoolVar(&m.noColor, "no-color", false, "")
	}
	if groups&varFlags != 0 {
		fs.Var(&m.vars, "var", "")
	}
	if groups&clusterFlags != 0 {
		fs.StringVar(&m.kvPrefix, "kv-prefix", envOr("DAGFLOW_KV_PREFIX", state.DefaultPrefix), "")
	}
	if groups&apiFlags != 0 {
		fs.StringVar(&m.address, "address", "", "")
		fs.StringVar(&m.token, "token", "", "")
	}
	return fs
}

// parseFlags parses args, printing the error and usage when they are wrong.
func (m *Meta) parseFlags(fs *flag.FlagSet, args []string) bool {
	if err := fs.Parse(args); err != nil {
		if err != flag.ErrHelp {
			m.UI.Error(fmt.Sprintf("Error: %v\n", err))
		}
		fs.Usage()
		return false
	}
	return true
}

// parseArgs parses args with options allowed before, between and after the positional
// arguments (`dagflow backfill etl -from 2026-01-01`), and returns the positional ones.
func (m *Meta) parseArgs(fs *flag.FlagSet, args []string) ([]string, bool) {
	var pos []string
	for {
		if !m.parseFlags(fs, args) {
			return nil, false
		}
		if fs.NArg() == 0 {
			return pos, true
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// parseExactly parses args as parseArgs does and wants n positional arguments; otherwise it
// prints "Error: " + usage and the flag set's usage, and reports false.
func (m *Meta) parseExactly(fs *flag.FlagSet, args []string, n int, usage string) ([]string, bool) {
	pos, ok := m.parseArgs(fs, args)
	if !ok {
		return nil, false
	}
	if len(pos) != n {
		m.UI.Error("Error: " + usage + "\n")
		fs.Usage()
		return nil, false
	}
	return pos, true
}

// parse parses args and returns the one optional path argument, "." by default.
func (m *Meta) parse(fs *flag.FlagSet, args []string) (string, bool) {
	if !m.parseFlags(fs, args) {
		return "", false
	}
	switch fs.NArg() {
	case 0:
		return ".", true
	case 1:
		return fs.Arg(0), true
	default:
		m.UI.Error(fmt.Sprintf("Error: expected at most one path, got %d: %s\n", fs.NArg(), strings.Join(fs.Args(), " ")))
		fs.Usage()
		return "", false
	}
}

// color reports whether output to w may use ANSI colors.
// serverConfig reads a server configuration file over the defaults, or the defaults alone when
// path is empty, printing every problem with its source line.
func (m *Meta) serverConfig(path string) (*config.Server, bool) {
	if path == "" {
		return config.Default(), true
	}
	cfg, files, diags := config.Load(path)
	if diags.HasErrors() {
		_ = hcl.NewDiagnosticTextWriter(os.Stderr, files, 0, m.color(os.Stderr)).WriteDiagnostics(diags)
		return nil, false
	}
	return cfg, true
}

func (m *Meta) color(w *os.File) bool {
	return !m.noColor && os.Getenv("NO_COLOR") == "" && term.IsTerminal(int(w.Fd()))
}

// load reads and validates the DAG files at path, printing any diagnostics to stderr. It
// returns nil when there are errors.
func (m *Meta) load(path string) *spec.Config {
	defer loadGC()()
	p := spec.NewParser()
	p.Vars = m.vars.values()
	cfg, diags := p.Load(path)
	if len(diags) > 0 {
		m.printDiagnostics(p, diags)
	}
	if diags.HasErrors() {
		return nil
	}
	return cfg
}

// loadGCPercent is the collector's GOGC while DAG files load (validate, plan, apply), unless
// the GOGC environment variable sets one. Loading 10,000 files of ten tasks allocates about
// 1.5 GB, most of it the HCL lexer's tokens and syntax trees, over a live heap of about 280 MB,
// and at Go's default of 100 the collector took a fifth of the command's CPU. At 200, plan over
// those files takes a sixth less CPU (user 3.4-3.8 s to 2.5-3.0 s) for a peak RSS about 150 MB
// higher (650-730 MB to 780-900 MB); 300 saved a tenth more for another 100 MB.
const loadGCPercent = 200

// loadGC sets the collector for loading DAG files and returns the function that restores it.
func loadGC() (restore func()) {
	if os.Getenv("GOGC") != "" {
		return func() {}
	}
	old := debug.SetGCPercent(loadGCPercent)
	return func() { debug.SetGCPercent(old) }
}

func (m *Meta) printDiagnostics(p *spec.Parser, diags hcl.Diagnostics) {
	width := 0
	if term.IsTerminal(int(os.Stderr.Fd())) {
		if w, _, err := term.GetSize(int(os.Stderr.Fd())); err == nil {
			width = w
		}
	}
	w := hcl.NewDiagnosticTextWriter(os.Stderr, p.Files(), uint(width), m.color(os.Stderr))
	_ = w.WriteDiagnostics(diags)
}

// store connects to Consul (CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN and the other CONSUL_ variables)
// and returns dagflow's state under the KV prefix.
func (m *Meta) store() (*state.Store, error) {
	client, err := consulapi.NewClient(consulapi.DefaultConfig())
	if err != nil {
		return nil, fmt.Errorf("configure the Consul client: %w", err)
	}
	return state.New(client, m.kvPrefix)
}

// nomad returns a Nomad client configured by NOMAD_ADDR, NOMAD_TOKEN, NOMAD_NAMESPACE and the
// other NOMAD_ variables.
func (m *Meta) nomad() (*nomadapi.Client, error) {
	client, err := nomadapi.NewClient(nomadapi.DefaultConfig())
	if err != nil {
		return nil, fmt.Errorf("configure the Nomad client: %w", err)
	}
	return client, nil
}

// confirm asks a question and reports whether the answer was exactly "yes". No answer (standard
// input closed, as in CI) is a no.
func (m *Meta) confirm(question string) bool {
	m.UI.Output(question)
	m.UI.Output("  Only 'yes' will be accepted to approve.\n")
	answer, err := m.UI.Ask("  Enter a value:")
	m.UI.Output("")
	return err == nil && strings.TrimSpace(answer) == "yes"
}

// varList collects repeated -var NAME=VALUE options.
type varList []string

func (v *varList) String() string { return strings.Join(*v, ",") }

func (v *varList) Set(s string) error {
	if name, _, ok := strings.Cut(s, "="); !ok || name == "" {
		return fmt.Errorf("want NAME=VALUE, got %q", s)
	}
	*v = append(*v, s)
	return nil
}

func (v varList) values() map[string]string {
	out := map[string]string{}
	for _, s := range v {
		name, value, _ := strings.Cut(s, "=")
		out[name] = value
	}
	return out
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}
