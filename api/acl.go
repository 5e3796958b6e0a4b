package api

import (
	"context"
	"time"
)

// Roles a token can have, each allowing what the one before it allows and more.
const (
	RoleViewer   = "viewer"   // read DAGs, runs and logs
	RoleOperator = "operator" // and trigger, backfill, pause, clear, mark, cancel
	RoleAdmin    = "admin"    // and manage tokens
)

// Token is an API token. SecretID is only ever shown when the token is created.
type Token struct {
	AccessorID string    `json:"accessor_id"`
	SecretID   string    `json:"secret_id,omitempty"`
	Name       string    `json:"name"`
	Role       string    `json:"role"`
	CreatedAt  time.Time `json:"created_at"`
}

// TokenRequest asks for a new token.
type TokenRequest struct {
	Name string `json:"name"`
	Role string `json:"role"`
}

// ACL reaches the token routes.
type ACL struct{ c *Client }

// ACL returns the token routes.
func (c *Client) ACL() *ACL { return &ACL{c} }

// Bootstrap creates the first admin token. It works once per cluster; afterwards admins create
// tokens with Create.
func (a *ACL) Bootstrap(ctx context.Context) (*Token, error) {
	var out Token
	_, err := a.c.call(ctx, "POST", "/v1/acl/bootstrap", nil, nil, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// Self returns the token the client uses, without its secret.
func (a *ACL) Self(ctx context.Context) (*Token, error) {
	var out Token
	_, err := a.c.call(ctx, "GET", "/v1/acl/token/self", nil, nil, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// Create makes a token; its SecretID is in the answer and nowhere else.
func (a *ACL) Create(ctx context.Context, req *TokenRequest) (*Token, error) {
	var out Token
	_, err := a.c.call(ctx, "POST", "/v1/acl/tokens", nil, req, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// List returns every token, without secrets.
func (a *ACL) List(ctx context.Context) ([]Token, error) {
	var out []Token
	_, err := a.c.call(ctx, "GET", "/v1/acl/tokens", nil, nil, &out)
	return out, err
}

// Delete revokes the token with accessor ID id.
func (a *ACL) Delete(ctx context.Context, id string) error {
	_, err := a.c.call(ctx, "DELETE", "/v1/acl/tokens/"+esc(id), nil, nil, nil)
	return err
}
