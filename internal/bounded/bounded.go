// Package bounded runs functions concurrently, a bounded number at once: for reading many
// Consul keys without a round trip each in turn, and without flooding a Consul server shared
// with everything else, and for parsing many DAG files on every core.
package bounded

import (
	"context"
	"sync"
)

// Run runs fns with at most n at once and returns the first error; the others are canceled
// through their context once one fails. It returns when every started function returned.
func Run(ctx context.Context, n int, fns []func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, max(n, 1))
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for _, fn := range fns {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := fn(ctx); err != nil {
				once.Do(func() { first = err; cancel() })
			}
		}()
	}
	wg.Wait()
	return first
}
