package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dagflow/dagflow/history"
)

func (d *doctor) checkHistory(ctx context.Context) checkResult {
	u := d.cfg.History.URL
	if u == "" {
		return passed("off (no history.url or DAGFLOW_HISTORY_URL): runs older than what Consul keeps (retention.keep_runs) are not kept")
	}
	db, err := history.Open(u)
	if err != nil {
		if inner := errors.Unwrap(err); inner != nil {
			err = inner // history's error starts "history URL:", as the message does
		}
		return failed("Set history.url or DAGFLOW_HISTORY_URL to postgres://USER:PASSWORD@HOST:PORT/DATABASE.", "the history URL is not valid: %v", err)
	}
	defer db.Close()
	start := time.Now()
	current, latest, err := db.Schema(ctx)
	took := roundDuration(time.Since(start))
	target := db.Target()
	switch {
	case err != nil:
		// Schema's error names the target already; what is left is PostgreSQL's reason.
		if inner := errors.Unwrap(err); inner != nil {
			err = inner
		}
		return failed(fmt.Sprintf("Start PostgreSQL at %s, or point history.url or DAGFLOW_HISTORY_URL at it. Meanwhile the servers keep scheduling, and keep finished runs in Consul until history has them.", target),
			"cannot reach PostgreSQL at %s: %s", target, d.reason(err))
	case current < latest:
		return failed("Start or restart a dagflow server with this history URL: it migrates the database when it starts.",
			"PostgreSQL at %s answers in %s, but its schema is at version %d of %d: no dagflow server of this version has migrated it", target, took, current, latest)
	case current > latest:
		return warned("Run doctor of the servers' dagflow version: this one is older than the servers.",
			"PostgreSQL at %s answers in %s; its schema version %d is newer than this dagflow knows (%d)", target, took, current, latest)
	}
	return passed("PostgreSQL at %s answers in %s, schema version %d (current)", target, took, current)
}
