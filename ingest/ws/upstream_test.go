package ws_test

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/relaymeter/relaymeter/internal/ethsim"
)

// upstream is the shared simulated node (internal/ethsim) with its test
// methods and echo on, served on loopback. It reports the close code each
// connection ended with on closes.
type upstream struct {
	node   *ethsim.Node
	srv    *httptest.Server
	closes chan websocket.StatusCode
}

func startUpstream(t testing.TB) *upstream {
	u := &upstream{closes: make(chan websocket.StatusCode, 1024)}
	u.node = ethsim.New(ethsim.Config{
		HeadInterval: -1, TestMethods: true, Echo: true, ReadLimit: 4 << 20, MaxBytes: 64 << 20,
		WriteTimeout: 2 * time.Minute, // the edge's own timeouts are under test, not the node's
		OnClose:      func(code websocket.StatusCode) { u.closes <- code },
	})
	u.srv = httptest.NewServer(u.node)
	t.Cleanup(u.srv.Close)
	return u
}

// closed returns the code the next upstream connection to end ended with;
// it fails t rather than hang if none ends.
func (u *upstream) closed(t *testing.T) websocket.StatusCode {
	t.Helper()
	select {
	case code := <-u.closes:
		return code
	case <-time.After(30 * time.Second):
		t.Fatal("no upstream connection ended")
		return 0
	}
}

func (u *upstream) url() string { return "ws" + strings.TrimPrefix(u.srv.URL, "http") }
