package devstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
)

// VaultRootToken is the root token of every Vault dev server StartVault starts.
const VaultRootToken = "devstack-root"

// Vault is a running Vault dev server: in memory, unsealed, a KV v2 engine at secret/, and
// VaultRootToken as its root token.
type Vault struct {
	Addr string // "http://127.0.0.1:PORT"

	agent
}

// StartVault starts `vault server -dev` on a free port in a new temp dir and returns once it
// answers as an unsealed active node, within DefaultConsulStartTimeout. ctx bounds the start
// only: call Stop.
func StartVault(ctx context.Context, logger io.Writer) (*Vault, error) {
	bin, err := Binary("vault")
	if err != nil {
		return nil, err
	}
	sweepStale()
	dir, err := os.MkdirTemp("", "devstack-vault-")
	if err != nil {
		return nil, fmt.Errorf("create vault temp dir: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		removeDir(dir)
		return nil, fmt.Errorf("start vault: %w", err)
	}
	v := &Vault{agent: agent{name: "vault", dir: dir, lock: lock}}
	for attempt := 1; ; attempt++ {
		err = v.start(ctx, bin, logger)
		if err == nil {
			return v, nil
		}
		if !retryable(err, 0) || attempt == startAttempts {
			break
		}
	}
	removeDir(dir)
	closeLock(lock)
	return nil, err
}

func (v *Vault) start(ctx context.Context, bin string, logger io.Writer) error {
	ports, err := FreePorts(1)
	if err != nil {
		return err
	}
	listen := "127.0.0.1:" + strconv.Itoa(ports[0])
	v.Addr = "http://" + listen
	args := []string{"server", "-dev", "-dev-root-token-id=" + VaultRootToken, "-dev-listen-address=" + listen, "-dev-no-store-token"}
	proc, err := startProcess("vault", bin, args, v.dir, logger, func(cmd *exec.Cmd) {
		// The dev server keeps nothing on disk; HOME keeps its token helper out of the user's.
		cmd.Env = append(os.Environ(), "HOME="+v.dir)
	})
	if err != nil {
		return err
	}
	if err := proc.waitReady(ctx, DefaultConsulStartTimeout, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.Addr+"/v1/sys/health", nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return errors.New("vault health: " + resp.Status)
		}
		return nil
	}); err != nil {
		return err
	}
	v.proc = proc
	return nil
}

// Stop shuts the server down and removes its temp dir. It is safe to call twice and on nil.
func (v *Vault) Stop() error {
	if v == nil {
		return nil
	}
	return v.stop()
}
