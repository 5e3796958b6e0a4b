package state

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	consulapi "github.com/hashicorp/consul/api"
)

// The catalog is stored as generations, so that it has no single-value ceiling (one key
// held about 2,800 DAGs under Consul's 512 KB limit) and an apply stays one atomic switch:
//
//	P + "catalog/head"             JSON catalogHead: the current generation, its chunk count and hash
//	P + "catalog/gen/<ID>/<i>"     chunk i of generation ID: part of the entries, immutable
//
// A generation's ID is "<N>-<hash>": N counts applies, hash is the start of the SHA-256 of
// its chunks, so two appliers racing from the same head write different keys and never mix
// chunks. Apply writes the chunks create-only, then check-and-sets the head on the index it
// was planned against; that one write is the apply. A reader reads the head, then the chunks
// of the generation it names, which never change: it sees the old catalog or the new one.
//
// Generations that are no longer current are deleted by later applies once keepGenerations
// newer ones exist, which gives a reader that read an old head time to read its chunks; one
// that still finds them gone reads the head again (errGenerationGone).
const (
	// chunkBudget is the most entry bytes one chunk takes: a quarter of Consul's value
	// limit, so two chunks share one transaction and 10,000 DAGs take about 12 chunks.
	chunkBudget = 128 << 10

	// keepGenerations is how many generations before the current one stay stored.
	keepGenerations = 3

	// genReadAttempts is how often a reader re-reads the head when its generation was
	// deleted under it; each time takes keepGenerations applies in between.
	genReadAttempts = 3
)

// errGenerationGone means the generation a head named lost chunks before they were read.
var errGenerationGone = errors.New("catalog generation was replaced while it was read")

// catalogHead is the JSON stored under P + "catalog/head".
type catalogHead struct {
	Generation uint64 `json:"generation"` // counts applies since the first generation
	ID         string `json:"id"`         // names the generation's folder
	Chunks     int    `json:"chunks"`     // how many chunk keys the folder holds
	SHA256     string `json:"sha256"`     // of the chunk values, in order
	DAGs       int    `json:"dags"`       // entries, for people reading the key
	Queues     int    `json:"queues"`
}

// catalogChunk is the JSON of one chunk: a part of the Catalog's entries.
type catalogChunk struct {
	DAGs   map[string]Entry `json:"dags,omitempty"`
	Queues map[string]Entry `json:"queues,omitempty"`
}

func (s *Store) headKey() string            { return s.prefix + "catalog/head" }
func (s *Store) genRoot() string            { return s.prefix + "catalog/gen/" }
func (s *Store) genPrefix(id string) string { return s.genRoot() + id + "/" }

// chunkKey zero-pads i so that keys sort in chunk order.
func (s *Store) chunkKey(id string, i int) string { return fmt.Sprintf("%s%05d", s.genPrefix(id), i) }

// splitCatalog encodes c's entries, DAGs then queues, each sorted by name, into chunks of at
// most chunkBudget bytes of entries.
func splitCatalog(c *Catalog) ([][]byte, error) {
	var out [][]byte
	cur := catalogChunk{}
	size := 0
	flush := func() error {
		if len(cur.DAGs)+len(cur.Queues) == 0 {
			return nil
		}
		v, err := json.Marshal(cur)
		if err != nil {
			return fmt.Errorf("encode catalog: %w", err)
		}
		if len(v) > maxValueSize {
			return fmt.Errorf("encode catalog: one entry takes %d KB: %w", kb(len(v)), ErrTooLarge)
		}
		out = append(out, v)
		cur, size = catalogChunk{}, 0
		return nil
	}
	add := func(entries map[string]Entry, into func(string, Entry)) error {
		names := make([]string, 0, len(entries))
		for n := range entries {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			e := entries[n]
			// Name, quotes, colon, comma and the entry's own JSON; times are UTC so their
			// length is fixed.
			cost := len(n) + len(e.Version) + 2*len(`"2006-01-02T15:04:05.999999999Z"`) + 64
			if size > 0 && size+cost > chunkBudget {
				if err := flush(); err != nil {
					return err
				}
			}
			into(n, e)
			size += cost
		}
		return nil
	}
	err := add(c.DAGs, func(n string, e Entry) {
		if cur.DAGs == nil {
			cur.DAGs = map[string]Entry{}
		}
		cur.DAGs[n] = e
	})
	if err != nil {
		return nil, err
	}
	err = add(c.Queues, func(n string, e Entry) {
		if cur.Queues == nil {
			cur.Queues = map[string]Entry{}
		}
		cur.Queues[n] = e
	})
	if err != nil {
		return nil, err
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}

func chunksHash(chunks [][]byte) string {
	h := sha256.New()
	for _, c := range chunks {
		h.Write(c)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// readGeneration reads the chunks of the generation head names and merges them.
func (s *Store) readGeneration(ctx context.Context, head *consulapi.KVPair) (*Catalog, error) {
	var h catalogHead
	if err := json.Unmarshal(head.Value, &h); err != nil {
		return nil, fmt.Errorf("decode catalog head %s: %w", head.Key, err)
	}
	c := &Catalog{DAGs: map[string]Entry{}, Queues: map[string]Entry{}, Index: head.ModifyIndex}
	if h.Chunks == 0 {
		return c, nil
	}
	pairs, _, err := s.kv.List(s.genPrefix(h.ID), s.readOpts(ctx))
	if err != nil {
		return nil, fmt.Errorf("read catalog generation %s: %w", h.ID, err)
	}
	if len(pairs) != h.Chunks {
		return nil, fmt.Errorf("read catalog generation %s: %d of %d chunks: %w", h.ID, len(pairs), h.Chunks, errGenerationGone)
	}
	sort.Slice(pairs, func(i, j int) bool { return pairs[i].Key < pairs[j].Key })
	chunks := make([][]byte, len(pairs))
	for i, p := range pairs {
		chunks[i] = p.Value
	}
	if got := chunksHash(chunks); got != h.SHA256 {
		return nil, fmt.Errorf("read catalog generation %s: its chunks hash to %s, the head says %s; the keys under %s were changed by hand", h.ID, got, h.SHA256, s.genPrefix(h.ID))
	}
	for _, p := range pairs {
		var part catalogChunk
		if err := json.Unmarshal(p.Value, &part); err != nil {
			return nil, fmt.Errorf("decode catalog chunk %s: %w", p.Key, err)
		}
		for n, e := range part.DAGs {
			c.DAGs[n] = e
		}
		for n, e := range part.Queues {
			c.Queues[n] = e
		}
	}
	return c, nil
}

// commitGeneration stores chunks as the next generation and makes it current with a
// check-and-set of the head on baseIndex, returning the head's new ModifyIndex. On a store
// still holding the single catalog key, the same transaction deletes that key, checking it
// is unchanged since baseIndex. It fails with ErrConflict when the catalog moved since.
func (s *Store) commitGeneration(ctx context.Context, baseIndex uint64, next *Catalog, chunks [][]byte) (uint64, error) {
	cur, _, err := s.kv.Get(s.headKey(), s.readOpts(ctx))
	if err != nil {
		return 0, fmt.Errorf("read catalog head: %w", err)
	}
	var (
		gen       uint64 = 1
		headIndex uint64 // the head's check-and-set: 0 creates it
		guard     consulapi.TxnOps
	)
	switch {
	case cur != nil:
		headIndex = baseIndex
		if cur.ModifyIndex != baseIndex {
			return 0, ErrConflict
		}
		var h catalogHead
		if err := json.Unmarshal(cur.Value, &h); err != nil {
			return 0, fmt.Errorf("decode catalog head %s: %w", cur.Key, err)
		}
		gen = h.Generation + 1
	default:
		legacy, _, err := s.kv.Get(s.catalogKey(), s.readOpts(ctx))
		if err != nil {
			return 0, fmt.Errorf("read catalog: %w", err)
		}
		switch {
		case legacy != nil && legacy.ModifyIndex == baseIndex:
			guard = consulapi.TxnOps{{KV: &consulapi.KVTxnOp{Verb: consulapi.KVDeleteCAS, Key: s.catalogKey(), Index: baseIndex}}}
		case legacy != nil || baseIndex != 0:
			return 0, ErrConflict
		}
	}

	sum := chunksHash(chunks)
	h := catalogHead{Generation: gen, ID: fmt.Sprintf("%d-%s", gen, sum[:16]), Chunks: len(chunks), SHA256: sum, DAGs: len(next.DAGs), Queues: len(next.Queues)}
	blobs := make([]blob, len(chunks))
	for i, c := range chunks {
		blobs[i] = blob{what: fmt.Sprintf("catalog chunk %d of %d", i+1, len(chunks)), key: s.chunkKey(h.ID, i), value: c}
	}
	if err := s.writeBlobs(ctx, blobs); err != nil {
		return 0, err
	}
	value, err := json.Marshal(h)
	if err != nil {
		return 0, fmt.Errorf("encode catalog head: %w", err)
	}
	// The head first: its result carries the index the apply committed at.
	ops := append(consulapi.TxnOps{{KV: &consulapi.KVTxnOp{Verb: consulapi.KVCAS, Key: s.headKey(), Value: value, Index: headIndex}}}, guard...)
	ok, resp, _, err := s.txn.Txn(ops, (&consulapi.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return 0, fmt.Errorf("write catalog head: %w", err)
	}
	if !ok {
		return 0, ErrConflict
	}
	if len(resp.Results) == 0 || resp.Results[0].KV == nil {
		return 0, errors.New("write catalog head: Consul answered without the head's index")
	}
	s.dropGenerations(ctx, gen)
	return resp.Results[0].KV.ModifyIndex, nil
}

// dropGenerations deletes the generations more than keepGenerations older than current,
// including chunks of applies that lost their race or failed. Its errors are not the apply's:
// the apply is done, and the next one tries again.
func (s *Store) dropGenerations(ctx context.Context, current uint64) {
	folders, _, err := s.kv.Keys(s.genRoot(), "/", s.readOpts(ctx))
	if err != nil {
		return
	}
	for _, f := range folders {
		id := strings.TrimSuffix(strings.TrimPrefix(f, s.genRoot()), "/")
		n, err := strconv.ParseUint(strings.SplitN(id, "-", 2)[0], 10, 64)
		if err != nil || n+keepGenerations >= current {
			continue
		}
		if _, err := s.kv.DeleteTree(f, s.writeOpts(ctx)); err != nil {
			return
		}
	}
}
