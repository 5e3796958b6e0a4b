package state_test

import (
	"fmt"
	"testing"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/dagflow/dagflow/state"
)

func TestSplitTxn(t *testing.T) {
	op := func(size int) *consulapi.TxnOp {
		return &consulapi.TxnOp{KV: &consulapi.KVTxnOp{Verb: consulapi.KVSet, Key: "k", Value: make([]byte, size)}}
	}
	many := func(n, size int) consulapi.TxnOps {
		ops := make(consulapi.TxnOps, n)
		for i := range ops {
			ops[i] = op(size)
		}
		return ops
	}
	tests := []struct {
		name   string
		ops    consulapi.TxnOps
		maxOps int
		want   []int // operations per transaction
	}{
		{"none", nil, 63, nil},
		{"by count", many(130, 10), 63, []int{63, 63, 4}},
		{"capped at Consul's 64", many(65, 10), 100, []int{64, 1}},
		{"by size", many(5, 100<<10), 63, []int{2, 2, 1}}, // 133 KB encoded each, 352 KB per txn
		{"oversized alone", append(many(1, 10), op(400<<10), op(10)), 63, []int{1, 1, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []int
			total := 0
			for _, b := range state.SplitTxn(tt.ops, tt.maxOps) {
				got = append(got, len(b))
				total += len(b)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) || total != len(tt.ops) {
				t.Errorf("SplitTxn = %v, want %v", got, tt.want)
			}
		})
	}
}
