// Package api is the Go client of dagflow's HTTP API, shaped like the Consul and Nomad clients:
//
//	c, err := api.NewClient(api.DefaultConfig())
//	runs, _, err := c.Runs().List(&api.RunListOptions{DAG: "nightly_etl"})
//
// Every server instance answers every call; an action sent to a standby is carried out by the
// active instance exactly as if it had been sent there. The types here are also what the server
// encodes, so client and server cannot drift apart.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// DefaultAddress is where a server started with no configuration listens.
const DefaultAddress = "http://127.0.0.1:8080"

// TokenHeader carries the caller's secret token. "Authorization: Bearer <token>" is accepted too,
// which is what Prometheus and most HTTP tools send.
const TokenHeader = "X-Dagflow-Token"

// Config says how to reach a dagflow server.
type Config struct {
	Address    string // DAGFLOW_ADDR, else DefaultAddress
	Token      string // DAGFLOW_TOKEN
	HTTPClient *http.Client
}

// DefaultConfig returns the configuration from the environment: DAGFLOW_ADDR and DAGFLOW_TOKEN.
func DefaultConfig() *Config {
	c := &Config{Address: DefaultAddress, Token: os.Getenv("DAGFLOW_TOKEN")}
	if a := os.Getenv("DAGFLOW_ADDR"); a != "" {
		c.Address = a
	}
	return c
}

// Client talks to one dagflow server. It is safe for concurrent use.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
}

// NewClient returns a client for cfg. An address without a scheme gets http://.
func NewClient(cfg *Config) (*Client, error) {
	addr := cfg.Address
	if addr == "" {
		addr = DefaultAddress
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("invalid dagflow address %q: want http://host:port", cfg.Address)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 2 * time.Minute}
	}
	return &Client{base: u, token: cfg.Token, http: hc}, nil
}

// Address returns the server address the client talks to.
func (c *Client) Address() string { return c.base.String() }

// QueryMeta is what the server says about a read beyond its result.
type QueryMeta struct {
	NextToken string        // where the next page starts; empty on the last page
	LastIndex uint64        // X-Dagflow-Index of a list: pass it as Wait.Index to long-poll
	Role      string        // "active" or "standby": the instance that answered
	Duration  time.Duration // how long the request took
}

// Wait makes a list a long-poll, as Consul's blocking queries: with Index set to the
// QueryMeta.LastIndex of an earlier answer, the server answers once the list changed after it,
// or after Time (zero: the server's default, a minute). The Client's HTTP timeout (2 minutes by
// default) must be longer than Time.
type Wait struct {
	Index uint64
	Time  time.Duration
}

func (w Wait) set(q url.Values) {
	if w.Index > 0 {
		q.Set("index", strconv.FormatUint(w.Index, 10))
	}
	if w.Time > 0 {
		q.Set("wait", w.Time.String())
	}
}

// Error is an error the server answered with.
type Error struct {
	StatusCode int
	Message    string
	Fields     []FieldError // per-field problems of a request body, e.g. trigger params
}

// FieldError is one problem with one field of a request.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	if len(e.Fields) == 0 {
		return e.Message
	}
	var b strings.Builder
	b.WriteString(e.Message)
	for _, f := range e.Fields {
		fmt.Fprintf(&b, "\n  %s: %s", f.Field, f.Message)
	}
	return b.String()
}

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	Error  string       `json:"error"`
	Fields []FieldError `json:"fields,omitempty"`
}

// IsNotFound reports whether err is the server saying the thing asked for does not exist.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.StatusCode == http.StatusNotFound
}

// url joins the server address with path, whose segments the caller has escaped.
func (c *Client) url(path string, q url.Values) string {
	s := strings.TrimSuffix(c.base.String(), "/") + path
	if len(q) > 0 {
		s += "?" + q.Encode()
	}
	return s
}

// do sends a request and returns the response when its status is 2xx; otherwise an *Error.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, in any) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url(path, q), body)
	if err != nil {
		return nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set(TokenHeader, c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	e := &Error{StatusCode: resp.StatusCode}
	var eb ErrorBody
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if json.Unmarshal(b, &eb) == nil && eb.Error != "" {
		e.Message, e.Fields = eb.Error, eb.Fields
	} else {
		e.Message = fmt.Sprintf("%s %s: %s", method, path, resp.Status)
	}
	return nil, e
}

// call sends a request and decodes a JSON answer into out (when out is not nil).
func (c *Client) call(ctx context.Context, method, path string, q url.Values, in, out any) (*QueryMeta, error) {
	start := time.Now()
	resp, err := c.do(ctx, method, path, q, in)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	qm := &QueryMeta{NextToken: resp.Header.Get("X-Dagflow-Next-Token"), Role: resp.Header.Get("X-Dagflow-Role"), Duration: time.Since(start)}
	qm.LastIndex, _ = strconv.ParseUint(resp.Header.Get("X-Dagflow-Index"), 10, 64)
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return nil, fmt.Errorf("decode answer to %s %s: %w", method, path, err)
		}
	}
	return qm, nil
}

// action sends an action for the active instance to carry out and returns its answer: a 202
// Accepted is a result with Queued set, not an error.
func (c *Client) action(ctx context.Context, path string, in any) (*ActionResult, error) {
	resp, err := c.do(ctx, "POST", path, nil, in)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out ActionResult
	if resp.StatusCode == http.StatusAccepted {
		var eb ErrorBody
		_ = json.NewDecoder(resp.Body).Decode(&eb)
		out.Queued, out.Message = true, eb.Error
		return &out, nil
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("decode answer to POST %s: %w", path, err)
	}
	return &out, nil
}

func esc(s string) string { return url.PathEscape(s) }

func itoa(n int) string { return strconv.Itoa(n) }
