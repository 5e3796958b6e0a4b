package state

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	consulapi "github.com/hashicorp/consul/api"
)

// Token is an API token as stored. Only the SHA-256 of its secret is kept, under a key derived
// from that hash, so reading Consul's KV store does not hand out working tokens.
type Token struct {
	AccessorID string    `json:"accessor_id"`
	Name       string    `json:"name"`
	Role       string    `json:"role"`
	SecretHash string    `json:"secret_hash"` // hex SHA-256 of the secret
	CreatedAt  time.Time `json:"created_at"`
}

// ACL errors.
var (
	ErrBootstrapped  = errors.New("ACL bootstrap was already done; create further tokens with an admin token (dagflow acl token create), or delete the bootstrap key to reset it")
	ErrTokenNotFound = errors.New("token not found")
)

func (s *Store) tokensPrefix() string        { return s.prefix + "acl/tokens/" }
func (s *Store) tokenKey(hash string) string { return s.tokensPrefix() + hash }

// bootstrapKey is claimed once, by the first admin token. Deleting it (consul kv delete) allows
// another bootstrap, the way Consul's reset file does.
func (s *Store) bootstrapKey() string { return s.prefix + "acl/bootstrap" }

func hashSecret(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// newUUID returns a random UUID (version 4), the shape Consul and Nomad give their tokens.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// CreateToken stores a new token and returns it with its secret, which is not kept anywhere.
// With bootstrap, it also claims the one-time bootstrap key in the same transaction, and fails
// with ErrBootstrapped when that was claimed before.
func (s *Store) CreateToken(ctx context.Context, name, role string, bootstrap bool) (*Token, string, error) {
	secret := newUUID()
	t := &Token{AccessorID: newUUID(), Name: name, Role: role, SecretHash: hashSecret(secret), CreatedAt: time.Now().UTC()}
	b, err := json.Marshal(t)
	if err != nil {
		return nil, "", fmt.Errorf("encode token: %w", err)
	}
	ops := consulapi.TxnOps{{KV: &consulapi.KVTxnOp{Verb: consulapi.KVCAS, Key: s.tokenKey(t.SecretHash), Value: b, Index: 0}}}
	if bootstrap {
		ops = append(ops, &consulapi.TxnOp{KV: &consulapi.KVTxnOp{Verb: consulapi.KVCAS, Key: s.bootstrapKey(), Value: []byte(t.AccessorID), Index: 0}})
	}
	ok, resp, _, err := s.txn.Txn(ops, (&consulapi.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nil, "", fmt.Errorf("store token: %w", err)
	}
	if !ok {
		if bootstrap {
			return nil, "", ErrBootstrapped
		}
		return nil, "", fmt.Errorf("store token: %v", resp.Errors)
	}
	return t, secret, nil
}

// TokenBySecret returns the token whose secret is secret, or ErrTokenNotFound.
func (s *Store) TokenBySecret(ctx context.Context, secret string) (*Token, error) {
	if secret == "" {
		return nil, ErrTokenNotFound
	}
	hash := hashSecret(secret)
	p, _, err := s.kv.Get(s.tokenKey(hash), s.readOpts(ctx))
	if err != nil {
		return nil, fmt.Errorf("read token: %w", err)
	}
	if p == nil {
		return nil, ErrTokenNotFound
	}
	var t Token
	if err := json.Unmarshal(p.Value, &t); err != nil {
		return nil, fmt.Errorf("decode token %s: %w", p.Key, err)
	}
	// The key already matched, but the stored hash is compared in constant time all the same,
	// so no code path compares secret material byte by byte.
	if subtle.ConstantTimeCompare([]byte(t.SecretHash), []byte(hash)) != 1 {
		return nil, ErrTokenNotFound
	}
	return &t, nil
}

// Tokens returns every stored token.
func (s *Store) Tokens(ctx context.Context) ([]*Token, error) {
	pairs, _, err := s.kv.List(s.tokensPrefix(), s.readOpts(ctx))
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	out := make([]*Token, 0, len(pairs))
	for _, p := range pairs {
		var t Token
		if err := json.Unmarshal(p.Value, &t); err != nil {
			return nil, fmt.Errorf("decode token %s: %w", p.Key, err)
		}
		out = append(out, &t)
	}
	return out, nil
}

// DeleteToken revokes the token with accessor ID id, or fails with ErrTokenNotFound.
func (s *Store) DeleteToken(ctx context.Context, id string) error {
	tokens, err := s.Tokens(ctx)
	if err != nil {
		return err
	}
	for _, t := range tokens {
		if t.AccessorID == id {
			if _, err := s.kv.Delete(s.tokenKey(t.SecretHash), s.writeOpts(ctx)); err != nil {
				return fmt.Errorf("delete token: %w", err)
			}
			return nil
		}
	}
	return ErrTokenNotFound
}
