package benchmark

import (
	"context"
	"testing"
	"time"
)

func TestMeasureLoopback(t *testing.T) {
	for _, size := range []int{1, 1000, 550_000} {
		lb, err := measureLoopback(context.Background(), size, 50*time.Millisecond)
		if err != nil {
			t.Fatalf("%d bytes: %v", size, err)
		}
		if lb.PerSec <= 0 || lb.P50 <= 0 || lb.Bytes != int64(size) {
			t.Fatalf("%d bytes: %+v", size, lb)
		}
	}
	if _, err := measureLoopback(context.Background(), 0, time.Millisecond); err == nil {
		t.Fatal("size 0: no error")
	}
}
