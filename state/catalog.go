package state

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/dagflow/dagflow/hcl/spec"
)

// Catalog is which DAG and queue versions are applied, keyed by name.
type Catalog struct {
	DAGs   map[string]Entry `json:"dags"`
	Queues map[string]Entry `json:"queues"`

	// Index is the ModifyIndex of the catalog's head key when it was read or written (of the
	// single catalog key of a store not applied to since generations came); 0 when none
	// exists yet. Apply uses it for its check-and-set.
	Index uint64 `json:"-"`
}

// Entry is the applied version of one DAG or queue.
type Entry struct {
	Version   string    `json:"version"`    // spec.Hash of the definition
	CreatedAt time.Time `json:"created_at"` // when the name was first applied; kept across updates
	UpdatedAt time.Time `json:"updated_at"` // when this version was applied
}

// Limits of one Consul transaction, which Apply uses to write many new versions in few Raft
// writes. Consul takes at most 64 operations per transaction and, by default, a request body of
// 512 KB (txn_max_req_len), in which values travel base64-encoded (4/3 of their size).
const (
	txnMaxOps = 64
	txnBudget = 352 << 10 // encoded bytes per transaction, leaving room for keys and JSON framing
	txnOpCost = 128       // framing of one operation besides its key and value
)

// Catalog reads the applied catalog with consistent reads: the head, then the chunks of the
// generation it names (see catalog_gen.go). When none was applied yet it returns an empty
// catalog (non-nil maps) with Index 0.
func (s *Store) Catalog(ctx context.Context) (*Catalog, error) {
	c, _, err := s.WatchCatalog(ctx, 0)
	return c, err
}

// WatchCatalog reads the catalog as Catalog does, with a blocking query on the catalog's head
// that returns when it changed after index (0: at once), and returns the index to pass next.
func (s *Store) WatchCatalog(ctx context.Context, index uint64) (*Catalog, uint64, error) {
	for attempt := 0; ; attempt++ {
		q := (&consulapi.QueryOptions{WaitIndex: index, WaitTime: blockingWait, RequireConsistent: true}).WithContext(ctx)
		pair, meta, err := s.kv.Get(s.headKey(), q)
		if err != nil {
			return nil, index, fmt.Errorf("read catalog: %w", err)
		}
		if pair == nil {
			c, err := s.legacyCatalog(ctx)
			return c, meta.LastIndex, err
		}
		c, err := s.readGeneration(ctx, pair)
		if errors.Is(err, errGenerationGone) && attempt < genReadAttempts {
			// Three applies replaced the generation between reading the head and its
			// chunks: read the head again, at once.
			index = 0
			continue
		}
		if err != nil {
			return nil, index, err
		}
		return c, meta.LastIndex, nil
	}
}

// CatalogSince reads the catalog as Catalog does, but returns known itself, without reading
// its chunks, when the head still names the generation known was read from. Callers that
// read the catalog often (the API) keep the last one and pass it; known may be nil.
func (s *Store) CatalogSince(ctx context.Context, known *Catalog) (*Catalog, error) {
	if known != nil && known.Index != 0 {
		pair, _, err := s.kv.Get(s.headKey(), s.readOpts(ctx))
		if err != nil {
			return nil, fmt.Errorf("read catalog: %w", err)
		}
		if pair != nil && pair.ModifyIndex == known.Index {
			return known, nil
		}
	}
	return s.Catalog(ctx)
}

// legacyCatalog reads the catalog of a store written before generations: one key holding every
// entry. The first apply replaces it with a generation (see Apply).
func (s *Store) legacyCatalog(ctx context.Context) (*Catalog, error) {
	c := &Catalog{DAGs: map[string]Entry{}, Queues: map[string]Entry{}}
	pair, _, err := s.kv.Get(s.catalogKey(), s.readOpts(ctx))
	if err != nil {
		return nil, fmt.Errorf("read catalog: %w", err)
	}
	if pair == nil {
		return c, nil
	}
	if err := json.Unmarshal(pair.Value, c); err != nil {
		return nil, fmt.Errorf("decode catalog %s: %w", s.catalogKey(), err)
	}
	if c.DAGs == nil {
		c.DAGs = map[string]Entry{}
	}
	if c.Queues == nil {
		c.Queues = map[string]Entry{}
	}
	c.Index = pair.ModifyIndex
	return c, nil
}

// blob is one version value to write create-only.
type blob struct {
	what  string // `dag "x"`, for errors
	key   string
	value []byte
}

// Apply makes the catalog hold exactly dags and queues. It writes the versions that are not
// stored yet, then replaces the catalog with a check-and-set on base.Index. Names absent from
// dags and queues leave the catalog, but their versions stay stored. An entry whose version is
// unchanged keeps its timestamps; a new name gets CreatedAt now, a changed version UpdatedAt
// now. It returns the new catalog with its new Index.
//
// The catalog is written as a new generation (catalog_gen.go): immutable chunks first, then
// the head that names them, with a check-and-set on base.Index. Readers see the old catalog or
// the new one, never a mix, however many DAGs it holds.
//
// Apply fails with ErrConflict (wrapped) when anything else wrote the catalog since base was
// read, including when the catalog would not change at all: an apply never succeeds against a
// stale plan. It fails with ErrTooLarge (wrapped), naming the DAG or queue, before writing
// anything when a version is over Consul's 512 KB value limit.
//
// Concurrency: versions are immutable and written create-only, so racing applies may both
// write them harmlessly; so are generations, whose keys name their content. Only one of them
// replaces the head. If Apply fails after writing versions or chunks, those stay as
// unreferenced keys: applying again reuses the versions, and a later apply deletes the chunks.
func (s *Store) Apply(ctx context.Context, base *Catalog, dags []*spec.DAG, queues []*spec.Queue, now time.Time) (*Catalog, error) {
	if base == nil {
		return nil, errors.New("apply: base catalog is nil; read it with Catalog first")
	}
	// Timestamps are stored in UTC without the monotonic reading so they read back Equal.
	now = now.UTC().Round(0)

	next := &Catalog{DAGs: make(map[string]Entry, len(dags)), Queues: make(map[string]Entry, len(queues))}
	var blobs []blob
	var tooLarge []error
	for _, d := range dags {
		if d == nil {
			return nil, errors.New("apply: nil dag definition")
		}
		if err := checkName("dag", d.Name); err != nil {
			return nil, fmt.Errorf("apply: %w", err)
		}
		if _, dup := next.DAGs[d.Name]; dup {
			return nil, fmt.Errorf("apply: dag %q is given twice", d.Name)
		}
		version, err := spec.Hash(d)
		if err != nil {
			return nil, fmt.Errorf("apply: hash dag %q: %w", d.Name, err)
		}
		e, changed := nextEntry(base.DAGs, d.Name, version, now)
		next.DAGs[d.Name] = e
		if !changed {
			continue
		}
		value, err := json.Marshal(dagBlob{DAG: d, Source: d.Source, CreatedAt: now})
		if err != nil {
			return nil, fmt.Errorf("apply: encode dag %q: %w", d.Name, err)
		}
		if len(value) > maxValueSize {
			tooLarge = append(tooLarge, fmt.Errorf("store dag %q: its definition and source take %d KB: %w; split it into smaller DAGs or move long scripts into files", d.Name, kb(len(value)), ErrTooLarge))
			continue
		}
		blobs = append(blobs, blob{what: fmt.Sprintf("dag %q", d.Name), key: s.versionKey("dag", d.Name, version), value: value})
	}
	for _, q := range queues {
		if q == nil {
			return nil, errors.New("apply: nil queue definition")
		}
		if err := checkName("queue", q.Name); err != nil {
			return nil, fmt.Errorf("apply: %w", err)
		}
		if _, dup := next.Queues[q.Name]; dup {
			return nil, fmt.Errorf("apply: queue %q is given twice", q.Name)
		}
		version, err := spec.Hash(q)
		if err != nil {
			return nil, fmt.Errorf("apply: hash queue %q: %w", q.Name, err)
		}
		e, changed := nextEntry(base.Queues, q.Name, version, now)
		next.Queues[q.Name] = e
		if !changed {
			continue
		}
		value, err := json.Marshal(queueBlob{Queue: q, Source: q.Source, CreatedAt: now})
		if err != nil {
			return nil, fmt.Errorf("apply: encode queue %q: %w", q.Name, err)
		}
		if len(value) > maxValueSize {
			tooLarge = append(tooLarge, fmt.Errorf("store queue %q: its definition and source take %d KB: %w", q.Name, kb(len(value)), ErrTooLarge))
			continue
		}
		blobs = append(blobs, blob{what: fmt.Sprintf("queue %q", q.Name), key: s.versionKey("queue", q.Name, version), value: value})
	}
	if len(tooLarge) > 0 {
		return nil, fmt.Errorf("apply: %w", errors.Join(tooLarge...))
	}

	chunks, err := splitCatalog(next)
	if err != nil {
		return nil, fmt.Errorf("apply: %w", err)
	}

	if sameEntries(base, next) {
		// Nothing to write, but the caller must still learn whether the plan was stale: an
		// apply reported as done has to mean the catalog holds exactly these versions.
		cur, err := s.Catalog(ctx)
		if err != nil {
			return nil, fmt.Errorf("apply: %w", err)
		}
		if cur.Index != base.Index {
			return nil, fmt.Errorf("apply: %w", ErrConflict)
		}
		next.Index = base.Index
		return next, nil
	}

	// Versions go first so the catalog never names a version that is not stored.
	if err := s.writeBlobs(ctx, blobs); err != nil {
		return nil, fmt.Errorf("apply: %w", err)
	}
	index, err := s.commitGeneration(ctx, base.Index, next, chunks)
	if err != nil {
		return nil, fmt.Errorf("apply: %w", err)
	}
	next.Index = index
	return next, nil
}

// nextEntry is the catalog entry of name at version, keeping the timestamps that still hold,
// and whether the version is new to the catalog (so its value may need writing).
func nextEntry(base map[string]Entry, name, version string, now time.Time) (Entry, bool) {
	old, ok := base[name]
	switch {
	case !ok:
		return Entry{Version: version, CreatedAt: now, UpdatedAt: now}, true
	case old.Version != version:
		return Entry{Version: version, CreatedAt: old.CreatedAt, UpdatedAt: now}, true
	default:
		return old, false
	}
}

func sameEntries(a, b *Catalog) bool {
	eq := func(x, y map[string]Entry) bool {
		if len(x) != len(y) {
			return false
		}
		for k, ex := range x {
			ey, ok := y[k]
			if !ok || ex.Version != ey.Version || !ex.CreatedAt.Equal(ey.CreatedAt) || !ex.UpdatedAt.Equal(ey.UpdatedAt) {
				return false
			}
		}
		return true
	}
	return eq(a.DAGs, b.DAGs) && eq(a.Queues, b.Queues)
}

// opCost is what one operation on key with value adds to a transaction's request body.
func opCost(key string, value []byte) int {
	return base64.StdEncoding.EncodedLen(len(value)) + len(key) + txnOpCost
}

// SplitTxn splits ops, in order, into groups that each fit one Consul transaction: at most
// maxOps operations (64 at most; less when the caller adds its own, such as a fence) and about
// 352 KB of request body. An operation too large to share a transaction gets one of its own.
func SplitTxn(ops consulapi.TxnOps, maxOps int) []consulapi.TxnOps {
	maxOps = min(maxOps, txnMaxOps)
	var out []consulapi.TxnOps
	var cur consulapi.TxnOps
	size := 0
	for _, op := range ops {
		cost := txnOpCost
		if op.KV != nil {
			cost = opCost(op.KV.Key, op.KV.Value)
		}
		if len(cur) > 0 && (len(cur) == maxOps || size+cost > txnBudget) {
			out = append(out, cur)
			cur, size = nil, 0
		}
		cur = append(cur, op)
		size += cost
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// writeBlobs stores each blob unless its key exists. Blobs are batched into transactions of
// create-only (cas index 0) operations, one Raft write per batch instead of per version. A
// batch that Consul rolls back, typically because one of its versions is stored already (a
// reverted edit, or a racing apply), is retried one key at a time, where an existing key is
// simply skipped and any real error surfaces for the blob that caused it.
func (s *Store) writeBlobs(ctx context.Context, blobs []blob) error {
	sort.Slice(blobs, func(i, j int) bool { return blobs[i].key < blobs[j].key })
	var batch []blob
	size := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := s.writeBatch(ctx, batch)
		batch, size = nil, 0
		return err
	}
	for _, b := range blobs {
		cost := opCost(b.key, b.value)
		if cost > txnBudget {
			// Too large to share a transaction, or to travel in one at all: a plain KV
			// write takes values up to the full 512 KB.
			if err := s.writeOne(ctx, b); err != nil {
				return err
			}
			continue
		}
		if len(batch) == txnMaxOps || size+cost > txnBudget {
			if err := flush(); err != nil {
				return err
			}
		}
		batch = append(batch, b)
		size += cost
	}
	return flush()
}

func (s *Store) writeBatch(ctx context.Context, batch []blob) error {
	if len(batch) == 1 {
		return s.writeOne(ctx, batch[0])
	}
	ops := make(consulapi.TxnOps, 0, len(batch))
	for _, b := range batch {
		ops = append(ops, &consulapi.TxnOp{KV: &consulapi.KVTxnOp{Verb: consulapi.KVCAS, Key: b.key, Value: b.value, Index: 0}})
	}
	ok, _, _, err := s.txn.Txn(ops, (&consulapi.QueryOptions{}).WithContext(ctx))
	if err == nil && ok {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("store %d versions: %w", len(batch), ctxErr)
	}
	for _, b := range batch {
		if err := s.writeOne(ctx, b); err != nil {
			return err
		}
	}
	return nil
}

// writeOne stores one blob create-only. An existing key holds the same content by
// construction (the key ends in the content's hash), so it counts as written.
func (s *Store) writeOne(ctx context.Context, b blob) error {
	_, _, err := s.kv.CAS(&consulapi.KVPair{Key: b.key, Value: b.value, ModifyIndex: 0}, s.writeOpts(ctx))
	if err != nil {
		if isTooLarge(err) {
			return fmt.Errorf("store %s (%d KB): %w: %w", b.what, kb(len(b.value)), ErrTooLarge, err)
		}
		return fmt.Errorf("store %s: %w", b.what, err)
	}
	return nil
}

// kb rounds n bytes up to kilobytes, so a value just over the limit never reads as 512 KB.
func kb(n int) int { return (n + 1023) / 1024 }
