package state

import (
	"context"
	"fmt"
	"strconv"
	"time"

	consulapi "github.com/hashicorp/consul/api"
)

// The epoch of history writers (package history) lives beside the runs:
//
//	P + "history/epoch"   decimal: the epoch of the leader that last started recording history
//
// A leader raises it with a fenced check-and-set before it records, so epochs only grow and
// two leaders never share one.

func (s *Store) historyEpochKey() string { return s.prefix + "history/epoch" }

// HistoryEpoch reads the history epoch and its ModifyIndex for SetHistoryEpochOp; 0 and 0 when
// none was ever set.
func (s *Store) HistoryEpoch(ctx context.Context) (epoch, index uint64, err error) {
	pair, _, err := s.kv.Get(s.historyEpochKey(), s.readOpts(ctx))
	if err != nil {
		return 0, 0, fmt.Errorf("read history epoch: %w", err)
	}
	if pair == nil {
		return 0, 0, nil
	}
	epoch, err = strconv.ParseUint(string(pair.Value), 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("read history epoch %s: %q is not a number", pair.Key, pair.Value)
	}
	return epoch, pair.ModifyIndex, nil
}

// SetHistoryEpochOp returns the transaction operation that sets the history epoch, if it is
// still at the ModifyIndex HistoryEpoch returned (0: not set).
func (s *Store) SetHistoryEpochOp(epoch, index uint64) *consulapi.TxnOp {
	return &consulapi.TxnOp{KV: &consulapi.KVTxnOp{Verb: consulapi.KVCAS, Key: s.historyEpochKey(), Value: []byte(strconv.FormatUint(epoch, 10)), Index: index}}
}

// PageKey is the order of run lists, newest logical date first, then by DAG and ID, and the
// token of their pages: runs are listed by descending key. The API and history both page by
// it, so a list can go on from Consul's runs into history's.
func PageKey(logicalDate time.Time, dag, id string) string {
	return logicalDate.UTC().Format("2006-01-02T15:04:05.000000000Z") + "|" + dag + "|" + id
}
