package main

import (
	"context"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/relaymeter/relaymeter/internal/ethsim"
)

// TestRunLoad drives the simulated node open-loop and checks that every
// request is accounted for, answered ones with a latency.
func TestRunLoad(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := httptest.NewServer(ethsim.New(ethsim.Config{HeadInterval: -1}))
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	lc := loadConfig{conns: 4, rate: 400, duration: 500 * time.Millisecond, method: "eth_chainId", inflight: 8}
	r, err := runLoad(ctx, "direct", url, lc, os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if r.sent < 190 || r.sent > 210 { // 4 connections, one request each 10 ms
		t.Fatalf("sent %d requests at 400/s for 0.5 s", r.sent)
	}
	if r.ok != r.sent || r.failed != 0 || int64(len(r.latencies)) != r.ok {
		t.Fatalf("sent %d, ok %d, failed %d, %d latencies", r.sent, r.ok, r.failed, len(r.latencies))
	}
	if p50, p99 := r.quantile(0.5), r.quantile(0.99); p50 <= 0 || p99 < p50 {
		t.Fatalf("p50 %s, p99 %s", p50, p99)
	}
	if r.cpuEnd == 0 || r.cpuEnd < r.cpuBefore {
		t.Fatalf("process CPU not read: %s → %s", r.cpuBefore, r.cpuEnd)
	}
}
