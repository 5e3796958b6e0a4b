package nomadexec

import (
	"context"
	"errors"
	"fmt"

	nomadapi "github.com/hashicorp/nomad/api"
)

// VariableItem reads item key of the Nomad Variable at path in namespace ("": the
// Executor's): what a callback's webhook header holds. The value is returned to be used at
// once, never stored; errors name the path and key, never the value. An error wraps
// ErrMissingVariable when the variable or its item does not exist, else ErrNomad.
func (e *Executor) VariableItem(ctx context.Context, namespace, path, key string) (string, error) {
	if namespace == "" {
		namespace = e.namespace
	}
	q := (&nomadapi.QueryOptions{Namespace: namespace}).WithContext(ctx)
	v, _, err := e.client.Variables().Read(path, q)
	switch {
	case errors.Is(err, nomadapi.ErrVariablePathNotFound):
		return "", fmt.Errorf("nomad variable %q in namespace %q: %w", path, namespace, ErrMissingVariable)
	case err != nil:
		return "", fmt.Errorf("read nomad variable %q in namespace %q: %w: %w", path, namespace, ErrNomad, err)
	}
	value, ok := v.Items[key]
	if !ok {
		return "", fmt.Errorf("nomad variable %q in namespace %q has no item %q: %w", path, namespace, key, ErrMissingVariable)
	}
	return value, nil
}
