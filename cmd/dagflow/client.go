package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"strings"

	"github.com/dagflow/dagflow/api"
)

// apiHelp is the help of the options every command that talks to the API takes.
const apiHelp = `
API options:

  -address=ADDR       Address of a dagflow server, active or standby. Default
                      DAGFLOW_ADDR, or http://127.0.0.1:8080.
  -token=TOKEN        Secret ID of an API token. Default DAGFLOW_TOKEN.`

// client returns a client of the dagflow API at -address with -token, which default to
// DAGFLOW_ADDR and DAGFLOW_TOKEN.
func (m *Meta) client() (*api.Client, error) {
	cfg := m.apiConfig()
	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w; set -address or DAGFLOW_ADDR", err)
	}
	return c, nil
}

func (m *Meta) apiConfig() *api.Config {
	cfg := api.DefaultConfig()
	if m.address != "" {
		cfg.Address = m.address
	}
	if m.token != "" {
		cfg.Token = m.token
	}
	return cfg
}

// interruptible returns a context that ends on Ctrl-C.
func interruptible() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt)
}

// connect returns an API client and a context that Ctrl-C ends; the caller defers stop.
func (m *Meta) connect() (*api.Client, context.Context, context.CancelFunc, error) {
	client, err := m.client()
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, stop := interruptible()
	return client, ctx, stop, nil
}

// openRun connects as connect does and resolves the RUN argument arg (see resolveRun).
func (m *Meta) openRun(arg string) (*api.Client, context.Context, runRef, context.CancelFunc, error) {
	client, ctx, stop, err := m.connect()
	if err != nil {
		return nil, nil, runRef{}, nil, err
	}
	ref, err := resolveRun(ctx, client, arg)
	if err != nil {
		stop()
		return nil, nil, runRef{}, nil, err
	}
	return client, ctx, ref, stop, nil
}

// fail prints err as something a person can act on and returns exitError.
func (m *Meta) fail(err error) int {
	m.UI.Error("Error: " + m.explain(err))
	return exitError
}

// explain turns an error of the API client into a message that says what went wrong and what
// to do about it.
func (m *Meta) explain(err error) string {
	var (
		apiErr *api.Error
		urlErr *url.Error
	)
	switch {
	case errors.Is(err, context.Canceled):
		return "interrupted"
	case errors.As(err, &apiErr):
		if apiErr.StatusCode == http.StatusUnauthorized {
			return "this needs a token: pass -token or set DAGFLOW_TOKEN. An admin creates tokens with dagflow acl token create."
		}
		var b strings.Builder
		b.WriteString(apiErr.Message)
		for _, f := range apiErr.Fields {
			name := f.Field
			if p, ok := strings.CutPrefix(name, "params."); ok {
				name = fmt.Sprintf("param %q", p)
			}
			fmt.Fprintf(&b, "\n  %s: %s", name, f.Message)
		}
		return b.String()
	case errors.As(err, &urlErr):
		addr := m.apiConfig().Address
		return fmt.Sprintf("cannot reach the dagflow server at %s: %v\n\nCheck that dagflow server runs there, or point -address or DAGFLOW_ADDR at one.", addr, urlErr.Err)
	}
	return err.Error()
}

// queued prints that no active server carried an action out in time, and returns exitQueued.
func (m *Meta) queued(action string) int {
	m.UI.Warn(fmt.Sprintf("Warning: no active dagflow server carried the %s out in time. It stays queued and is carried out when a server leads; check that dagflow server runs against this cluster.", action))
	return exitQueued
}

// runRef names one run: run IDs are unique per DAG only.
type runRef struct {
	DAG string
	ID  string
}

func (r runRef) String() string { return r.DAG + "/" + r.ID }

// maxCandidates is how many runs an ambiguous run ID lists.
const maxCandidates = 10

// resolveRun reads a RUN argument: DAG/RUN_ID, or a bare RUN_ID, which must belong to the runs
// of one DAG only.
func resolveRun(ctx context.Context, c *api.Client, arg string) (runRef, error) {
	if dag, id, ok := strings.Cut(arg, "/"); ok {
		if dag == "" || id == "" {
			return runRef{}, fmt.Errorf("run %q: want DAG/RUN_ID or RUN_ID", arg)
		}
		return runRef{dag, id}, nil
	}
	var found []runRef
	opts := &api.RunListOptions{RunID: arg}
	for {
		page, qm, err := c.Runs().List(ctx, opts)
		if err != nil {
			return runRef{}, err
		}
		for _, r := range page {
			found = append(found, runRef{r.DAG, r.ID})
		}
		if qm.NextToken == "" {
			break
		}
		opts.NextToken = qm.NextToken
	}
	switch len(found) {
	case 0:
		return runRef{}, fmt.Errorf("no DAG has a run %q; dagflow runs lists the runs", arg)
	case 1:
		return found[0], nil
	}
	sort.Slice(found, func(i, j int) bool { return found[i].DAG < found[j].DAG })
	names := make([]string, 0, maxCandidates)
	for _, r := range found[:min(len(found), maxCandidates)] {
		names = append(names, "  "+r.String())
	}
	if len(found) > maxCandidates {
		names = append(names, fmt.Sprintf("  ... and %d more", len(found)-maxCandidates))
	}
	return runRef{}, fmt.Errorf("run ID %q is used by runs of %d DAGs; name one as DAG/RUN_ID:\n%s", arg, len(found), strings.Join(names, "\n"))
}
