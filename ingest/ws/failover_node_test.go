package ws_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ethersVersion is the ethers release TestFailoverEthers installs.
const ethersVersion = "6.17.0"

// TestFailoverEthers is TestFailoverEthclient's failover with ethers v6
// in Node, unchanged: its block subscription keeps delivering after the
// node it is on is killed, no head twice, and its call in flight gets
// -32603. It needs node and npm on PATH and the npm registry (once: the
// package is kept in the user's cache directory).
func TestFailoverEthers(t *testing.T) {
	dir := ethersDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p := startPool(t)
	e := poolEdge(t, p, nil)

	cmd := exec.CommandContext(ctx, "node", filepath.Join(dir, "failover_ethers.mjs"), e.url("app"))
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var heads []uint64
	line := func() string {
		t.Helper()
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("ethers exited; heads %v", heads)
				}
				if n, ok := strings.CutPrefix(l, "head "); ok {
					h, _ := strconv.ParseUint(n, 10, 64)
					heads = append(heads, h)
				}
				return l
			case <-ctx.Done():
				t.Fatalf("ethers said nothing; heads %v", heads)
			}
		}
	}
	head := func() {
		t.Helper()
		for !strings.HasPrefix(line(), "head ") {
		}
	}
	for line() != "subscribed" {
	}
	on := p.serving(t)
	p.chain.Next(ctx)
	p.nodes[1-on].Freeze()
	p.chain.Next(ctx)
	head()
	head()
	io.WriteString(stdin, "hang\n")
	waitFor(t, "the call to reach the node", func() bool { return p.nodes[on].Hanging() == 1 })
	p.nodes[on].Kill()
	var hang string
	for !strings.HasPrefix(hang, "hang ") {
		hang = line()
	}
	var rpcErr struct {
		Code    int
		Message string
	}
	if err := json.Unmarshal([]byte(strings.TrimPrefix(hang, "hang error ")), &rpcErr); err != nil || rpcErr.Code != -32603 {
		t.Fatalf("call in flight: %s, want error -32603", hang)
	}
	waitFor(t, "the subscription re-created", func() bool { return p.nodes[1-on].Subscriptions() == 1 })
	p.nodes[1-on].Thaw(ctx)
	p.chain.Next(ctx)
	head()
	if len(heads) != 3 || heads[1] != heads[0]+1 || heads[2] != heads[1]+1 {
		t.Fatalf("heads %v: want three consecutive, none twice", heads)
	}
	io.WriteString(stdin, "quit\n")
}

// ethersDir is a directory holding ethers in node_modules and the test's
// script, or skips t saying what the machine lacks.
func ethersDir(t *testing.T) string {
	t.Helper()
	for _, bin := range []string{"node", "npm"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s is not on PATH: install Node.js and npm (Debian: apt-get install nodejs npm) to run the ethers test", bin)
		}
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "relaymeter-test", "ethers-"+ethersVersion)
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "ethers", "package.json")); err != nil {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		install := exec.Command("npm", "install", "--no-audit", "--no-fund", "--prefix", dir, "ethers@"+ethersVersion)
		if out, err := install.CombinedOutput(); err != nil {
			t.Skipf("npm install ethers@%s failed (is the npm registry reachable?): %v\n%s", ethersVersion, err, out)
		}
	}
	script, err := os.ReadFile(filepath.Join("testdata", "node", "failover_ethers.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "failover_ethers.mjs"), script, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}
