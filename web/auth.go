package web

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/dagflow/dagflow/api"
	"github.com/dagflow/dagflow/state"
)

// rank orders the roles: each allows what those below it allow.
var rank = map[string]int{api.RoleViewer: 1, api.RoleOperator: 2, api.RoleAdmin: 3}

// ValidRole reports whether role is one a token can have.
func ValidRole(role string) bool { return rank[role] > 0 }

type tokenKey struct{}

// msgTokenNotFound answers a token that is not stored. The UI signs out on a 403 that does not
// start with "permission denied".
const msgTokenNotFound = "token not found: it was revoked or mistyped"

// secret returns the token a request carries, from X-Dagflow-Token or an Authorization bearer.
func secret(r *http.Request) string {
	if t := r.Header.Get(api.TokenHeader); t != "" {
		return t
	}
	if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		return strings.TrimSpace(a[7:])
	}
	return ""
}

// authorize lets a request through to next when its token's role is at least need.
func (s *Server) authorize(need string, next http.Handler) http.Handler {
	if need == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sec := secret(r)
		if sec == "" {
			if rank[s.cfg.AnonymousRole] >= rank[need] && s.cfg.AnonymousRole != "" {
				next.ServeHTTP(w, r)
				return
			}
			writeError(w, http.StatusUnauthorized, "this needs a token with role "+need+" or higher: pass -token or DAGFLOW_TOKEN, or send the "+api.TokenHeader+" header")
			return
		}
		t, err := s.store().TokenBySecret(r.Context(), sec)
		if errors.Is(err, state.ErrTokenNotFound) {
			writeError(w, http.StatusForbidden, msgTokenNotFound)
			return
		}
		if err != nil {
			s.fail(w, "check token", err)
			return
		}
		if rank[t.Role] < rank[need] {
			writeError(w, http.StatusForbidden, "permission denied: this needs role "+need+" or higher, and the token has role "+t.Role)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), tokenKey{}, t)))
	})
}

func tokenJSON(t *state.Token, secret string) api.Token {
	return api.Token{AccessorID: t.AccessorID, SecretID: secret, Name: t.Name, Role: t.Role, CreatedAt: t.CreatedAt}
}

func (s *Server) bootstrap(w http.ResponseWriter, r *http.Request) {
	t, sec, err := s.store().CreateToken(r.Context(), "bootstrap token", api.RoleAdmin, true)
	if errors.Is(err, state.ErrBootstrapped) {
		writeError(w, http.StatusForbidden, err.Error())
		return
	}
	if err != nil {
		s.fail(w, "bootstrap ACL", err)
		return
	}
	s.log.Info("acl bootstrapped", "accessor_id", t.AccessorID)
	writeJSON(w, http.StatusOK, tokenJSON(t, sec))
}

func (s *Server) tokenSelf(w http.ResponseWriter, r *http.Request) {
	t, ok := r.Context().Value(tokenKey{}).(*state.Token)
	if !ok {
		writeJSON(w, http.StatusOK, api.Token{Name: "anonymous", Role: s.cfg.AnonymousRole})
		return
	}
	writeJSON(w, http.StatusOK, tokenJSON(t, ""))
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) {
	tokens, err := s.store().Tokens(r.Context())
	if err != nil {
		s.fail(w, "list tokens", err)
		return
	}
	out := make([]api.Token, 0, len(tokens))
	for _, t := range tokens {
		out = append(out, tokenJSON(t, ""))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	var req api.TokenRequest
	if !decode(w, r, &req) {
		return
	}
	if !ValidRole(req.Role) {
		writeError(w, http.StatusBadRequest, "invalid token request", api.FieldError{Field: "role", Message: "want viewer, operator or admin, got " + quote(req.Role)})
		return
	}
	if strings.TrimSpace(req.Name) == "" {
		writeError(w, http.StatusBadRequest, "invalid token request", api.FieldError{Field: "name", Message: "a token needs a name that says who or what uses it"})
		return
	}
	t, sec, err := s.store().CreateToken(r.Context(), req.Name, req.Role, false)
	if err != nil {
		s.fail(w, "create token", err)
		return
	}
	s.log.Info("token created", "accessor_id", t.AccessorID, "role", t.Role)
	writeJSON(w, http.StatusOK, tokenJSON(t, sec))
}

func (s *Server) deleteToken(w http.ResponseWriter, r *http.Request) {
	err := s.store().DeleteToken(r.Context(), r.PathValue("id"))
	if errors.Is(err, state.ErrTokenNotFound) {
		writeError(w, http.StatusNotFound, "no token has accessor ID "+quote(r.PathValue("id")))
		return
	}
	if err != nil {
		s.fail(w, "delete token", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
