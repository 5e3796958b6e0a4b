package state

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"sort"
	"sync"
	"time"
	"weak"

	"github.com/dagflow/dagflow/hcl/spec"
)

// DAGVersion is one applied version of a DAG, as stored.
type DAGVersion struct {
	DAG       *spec.DAG // DAG.Source is filled from Source
	Source    string    // the dag block as written when it was applied
	CreatedAt time.Time // when this version was first applied
}

// VersionInfo names one stored version without its content.
type VersionInfo struct {
	Version   string    // spec.Hash of the definition
	CreatedAt time.Time // when this version was first applied
}

// dagBlob is the JSON stored under P + "dags/<name>/versions/<hash>".
type dagBlob struct {
	DAG       *spec.DAG `json:"dag"`
	Source    string    `json:"source"`
	CreatedAt time.Time `json:"created_at"`
}

// queueBlob is the JSON stored under P + "queues/<name>/versions/<hash>".
type queueBlob struct {
	Queue     *spec.Queue `json:"queue"`
	Source    string      `json:"source"`
	CreatedAt time.Time   `json:"created_at"`
}

// DAGVersion reads one applied version of the DAG name. It fails with ErrNotFound (wrapped)
// when that version is not stored.
//
// Versions never change, so the same decoded definition is shared by every reader of the
// Store that holds it (a server's engine, API and history): the result must not be modified.
// With 10,000 DAGs each decoded version is kilobytes, and a copy per reader doubled a
// server's live memory. A reader may keep the DAGVersion or only its DAG: either keeps the
// definition shared. Readers asking for a version another is reading wait for that read
// instead of reading it too: a new leader's engine and its API's first DAG list read the same
// thousands of versions at once, and decoded each twice.
func (s *Store) DAGVersion(ctx context.Context, name, version string) (*DAGVersion, error) {
	key := name + "\x00" + version
	v, rd, first := s.versions.start(key)
	if v != nil {
		return v, nil
	}
	if !first {
		select {
		case <-rd.done:
			if rd.err == nil {
				return rd.v, nil
			}
			// The first reader failed, perhaps only its context: read it ourselves.
		case <-ctx.Done():
			return nil, fmt.Errorf("read dag %q version %s: %w", name, version, ctx.Err())
		}
		v, err := s.readDAGVersion(ctx, name, version)
		if err != nil {
			return nil, err
		}
		return s.versions.put(key, v, nil), nil
	}
	v, err := s.readDAGVersion(ctx, name, version)
	if err != nil {
		s.versions.fail(rd, key, err)
		return nil, err
	}
	return s.versions.put(key, v, rd), nil
}

// versionCache holds weak pointers to the DAG definitions read: an entry lasts as long as some
// reader keeps the definition (the engine keeps a version's *spec.DAG, the API its
// *DAGVersion, which points to it), and costs nothing once none does.
type versionCache struct {
	mu      sync.Mutex
	m       map[string]cachedVersion
	reading map[string]*versionRead // reads in flight, by key
}

// versionRead is a read of a version in flight; done closes when it ended with v or err.
type versionRead struct {
	done chan struct{}
	v    *DAGVersion
	err  error
}

// start returns the cached version of key, or the read in flight of it and whether the
// caller is the first reader, which reads it and must end rd with put or fail.
func (c *versionCache) start(key string) (v *DAGVersion, rd *versionRead, first bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v := c.m[key].version(); v != nil {
		return v, nil, false
	}
	if rd := c.reading[key]; rd != nil {
		return nil, rd, false
	}
	if c.reading == nil {
		c.reading = map[string]*versionRead{}
	}
	rd = &versionRead{done: make(chan struct{})}
	c.reading[key] = rd
	return nil, rd, true
}

// fail ends read rd of key with err.
func (c *versionCache) fail(rd *versionRead, key string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rd.err = err
	delete(c.reading, key)
	close(rd.done)
}

// cachedVersion is a DAGVersion held weakly by its definition.
type cachedVersion struct {
	dag       weak.Pointer[spec.DAG]
	createdAt time.Time
}

func (c *versionCache) get(key string) *DAGVersion {
	c.mu.Lock()
	defer c.mu.Unlock()
	cv, ok := c.m[key]
	if !ok {
		return nil
	}
	return cv.version()
}

// version returns the DAGVersion of cv, or nil when its definition was collected.
func (cv cachedVersion) version() *DAGVersion {
	d := cv.dag.Value()
	if d == nil {
		return nil
	}
	return &DAGVersion{DAG: d, Source: d.Source, CreatedAt: cv.createdAt}
}

// put stores v under key, unless another reader stored one meanwhile, and returns the one
// kept; it ends read rd (nil: none) with it.
func (c *versionCache) put(key string, v *DAGVersion, rd *versionRead) *DAGVersion {
	c.mu.Lock()
	defer c.mu.Unlock()
	if rd != nil {
		defer func() {
			delete(c.reading, key)
			close(rd.done)
		}()
	}
	if kept := c.m[key].version(); kept != nil {
		if rd != nil {
			rd.v = kept
		}
		return kept
	}
	if rd != nil {
		rd.v = v
	}
	if c.m == nil {
		c.m = map[string]cachedVersion{}
	}
	wp := weak.Make(v.DAG)
	c.m[key] = cachedVersion{dag: wp, createdAt: v.CreatedAt}
	runtime.AddCleanup(v.DAG, func(key string) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.m[key].dag == wp {
			delete(c.m, key)
		}
	}, key)
	return v
}

func (s *Store) readDAGVersion(ctx context.Context, name, version string) (*DAGVersion, error) {
	var b dagBlob
	if err := s.getVersion(ctx, "dag", name, version, &b); err != nil {
		return nil, err
	}
	if b.DAG == nil {
		return nil, fmt.Errorf("read dag %q version %s: stored value has no definition", name, version)
	}
	b.DAG.Source = b.Source
	return &DAGVersion{DAG: b.DAG, Source: b.Source, CreatedAt: b.CreatedAt}, nil
}

// Queue reads one applied version of the queue name, with its Source filled. It fails with
// ErrNotFound (wrapped) when that version is not stored.
func (s *Store) Queue(ctx context.Context, name, version string) (*spec.Queue, error) {
	var b queueBlob
	if err := s.getVersion(ctx, "queue", name, version, &b); err != nil {
		return nil, err
	}
	if b.Queue == nil {
		return nil, fmt.Errorf("read queue %q version %s: stored value has no definition", name, version)
	}
	b.Queue.Source = b.Source
	return b.Queue, nil
}

func (s *Store) getVersion(ctx context.Context, kind, name, version string, v any) error {
	if err := checkName(kind, name); err != nil {
		return fmt.Errorf("read %s version: %w", kind, err)
	}
	if err := checkName("version of "+kind, version); err != nil {
		return fmt.Errorf("read %s %q version: %w", kind, name, err)
	}
	pair, _, err := s.kv.Get(s.versionKey(kind, name, version), s.readOpts(ctx))
	if err != nil {
		return fmt.Errorf("read %s %q version %s: %w", kind, name, version, err)
	}
	if pair == nil {
		return fmt.Errorf("read %s %q version %s: %w", kind, name, version, ErrNotFound)
	}
	if err := json.Unmarshal(pair.Value, v); err != nil {
		return fmt.Errorf("decode %s %q version %s: %w", kind, name, version, err)
	}
	return nil
}

// DAGVersions lists every stored version of the DAG name, oldest first. It fails with
// ErrNotFound (wrapped) when no version of name was ever applied.
//
// Versions are ordered by the Consul index that created them, which is the order they were
// applied in regardless of clock skew between the machines that applied them.
func (s *Store) DAGVersions(ctx context.Context, name string) ([]VersionInfo, error) {
	if err := checkName("dag", name); err != nil {
		return nil, fmt.Errorf("list dag versions: %w", err)
	}
	prefix := s.versionsPrefix("dag", name)
	// The values are read too because CreatedAt lives in them; versions are bounded by the
	// 512 KB value limit and a DAG has as many as it was edited and applied.
	pairs, _, err := s.kv.List(prefix, s.readOpts(ctx))
	if err != nil {
		return nil, fmt.Errorf("list dag %q versions: %w", name, err)
	}
	if len(pairs) == 0 {
		return nil, fmt.Errorf("list dag %q versions: %w", name, ErrNotFound)
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].CreateIndex != pairs[j].CreateIndex {
			return pairs[i].CreateIndex < pairs[j].CreateIndex
		}
		return pairs[i].Key < pairs[j].Key
	})
	out := make([]VersionInfo, 0, len(pairs))
	for _, p := range pairs {
		var b struct {
			CreatedAt time.Time `json:"created_at"`
		}
		version := p.Key[len(prefix):]
		if err := json.Unmarshal(p.Value, &b); err != nil {
			return nil, fmt.Errorf("decode dag %q version %s: %w", name, version, err)
		}
		out = append(out, VersionInfo{Version: version, CreatedAt: b.CreatedAt})
	}
	return out, nil
}
