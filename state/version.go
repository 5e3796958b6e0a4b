package state

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

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
func (s *Store) DAGVersion(ctx context.Context, name, version string) (*DAGVersion, error) {
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
