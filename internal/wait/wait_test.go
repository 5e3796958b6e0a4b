package wait

import (
	"context"
	"testing"
	"time"
)

func TestSleepFullDuration(t *testing.T) {
	if !Sleep(context.Background(), time.Millisecond) {
		t.Fatal("Sleep reported an early end with a live context")
	}
}

func TestSleepCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if Sleep(ctx, time.Hour) {
		t.Fatal("Sleep reported the full hour with a cancelled context")
	}
}
