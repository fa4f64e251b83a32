package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaymeter/relaymeter/identity"
	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/internal/eventtest"
	"github.com/relaymeter/relaymeter/internal/kafkatest"
	"github.com/relaymeter/relaymeter/internal/pgtest"
	"github.com/relaymeter/relaymeter/internal/sv2sim"
	"github.com/relaymeter/relaymeter/stratum/sv2/noise"
)

// sv2Keys returns a fresh authority key written as hex to a file, and a
// pool Noise identity certified by another authority.
func sv2Keys(t *testing.T) (authority *noise.PrivateKey, keyFile string, pool *noise.Config, poolAuthority noise.PublicKey) {
	t.Helper()
	authority, err := noise.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	keyFile = filepath.Join(t.TempDir(), "authority.key")
	if err := os.WriteFile(keyFile, []byte(hex.EncodeToString(authority.Bytes())+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pa, err := noise.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	static, err := noise.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := noise.IssueCertificate(pa, static.PublicKey(), time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return authority, keyFile, &noise.Config{StaticKey: static, Certificate: &cert}, pa.PublicKey()
}

// startEdgeSv2 runs `relaymeter edge sv2` with args until the test ends
// or stop is called, returning its listen address.
func startEdgeSv2(t *testing.T, args ...string) (addr string, logs *lockedBuffer, stop func()) {
	t.Helper()
	addr, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	logs = &lockedBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runEdgeSv2(ctx, append([]string{"--listen", addr, "--spool-dir", "", "--log-level", "debug"}, args...),
			stdio{in: strings.NewReader(""), out: logs, err: logs})
	}()
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(logs.String(), "edge sv2: listening"); time.Sleep(5 * time.Millisecond) {
		select {
		case err := <-done:
			t.Fatalf("edge sv2 exited: %v\n%s", err, logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("edge sv2 did not start:\n%s", logs)
		}
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("edge sv2: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return addr, logs, stop
}

func TestSv2EdgeCommand(t *testing.T) {
	cluster := kafkatest.Start(t, kafkatest.Options{Partitions: 2, Topics: []string{topicMessages}})
	authority, keyFile, poolNoise, poolAuthority := sv2Keys(t)
	pool, err := sv2sim.StartPool(sv2sim.PoolConfig{Noise: poolNoise, RejectEvery: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	addr, logs, stop := startEdgeSv2(t, "--upstream", pool.Addr(), "--supplier", "sup", "--kafka", strings.Join(cluster.Brokers, ","),
		"--open-access", "--authority-key-file", keyFile, "--upstream-authority-pubkey", poolAuthority.String())
	if !strings.Contains(logs.String(), authority.PublicKey().String()) {
		t.Errorf("the authority public key miners pin is not logged:\n%s", logs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := sv2sim.RunMiner(ctx, sv2sim.MinerConfig{Addr: addr, Noise: &noise.Config{AuthorityKey: authority.PublicKey()},
		UserIdentity: "acme.rig1", Shares: 4})
	if err != nil {
		t.Fatalf("miner: %v\n%s", err, logs)
	}
	if res.Accepted != 2 || res.Rejected != 2 {
		t.Errorf("accepted %d rejected %d, want 2 and 2", res.Accepted, res.Rejected)
	}
	// A miner pinning another authority is refused by its own handshake.
	other, _ := noise.GeneratePrivateKey()
	if _, err := sv2sim.RunMiner(ctx, sv2sim.MinerConfig{Addr: addr, Noise: &noise.Config{AuthorityKey: other.PublicKey()},
		UserIdentity: "acme", Shares: 1}); err == nil {
		t.Error("a miner pinning another authority got through")
	}
	stop()
	streams := eventtest.StreamEvents(t, eventtest.ReadTopic(t, cluster.Brokers, topicMessages, 2))
	var found bool
	for _, evs := range streams {
		o := evs[0].GetOpened()
		if o.GetApplication() != "acme" {
			continue
		}
		found = true
		if o.ClientSecurity != event.Security_NOISE || o.UpstreamSecurity != event.Security_NOISE || o.Service != "sv2" {
			t.Errorf("opened %v", o)
		}
		var msgs int64
		for _, ev := range evs {
			if ev.GetMessage() != nil {
				msgs++
			}
		}
		if want := res.Stats.FramesIn + res.Stats.FramesOut; msgs != want {
			t.Errorf("%d messages recorded, miner exchanged %d", msgs, want)
		}
	}
	if !found {
		t.Errorf("no stream for acme among %d", len(streams))
	}
}

func TestSv2EdgeCommandFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--supplier", "s", "--kafka", "k", "--open-access"}, "--upstream is required"},
		{[]string{"--upstream", "u:1", "--supplier", "s", "--kafka", "k"}, "--database-url is required"},
		{[]string{"--upstream", "u:1", "--supplier", "s", "--kafka", "k", "--open-access"}, "--authority-key-file is required"},
		{[]string{"--upstream", "u:1", "--supplier", "s", "--kafka", "k", "--open-access", "--plaintext-downstream"}, "--upstream-authority-pubkey is required"},
		{[]string{"--upstream", "u:1", "--supplier", "s", "--kafka", "k", "--open-access", "--plaintext-downstream", "--upstream-authority-pubkey", "nope"}, "--upstream-authority-pubkey"},
		{[]string{"--upstream", "u:1", "--supplier", "s", "--kafka", "k", "--open-access", "--plaintext-downstream", "--plaintext-upstream", "--reconnect", "drop"}, "--reconnect"},
		{[]string{"--upstream", "u:1", "--supplier", "s", "--kafka", "k", "--open-access", "--plaintext-downstream", "--plaintext-upstream", "--advertise", "edge.example"}, "--advertise"},
	} {
		var out bytes.Buffer
		err := runEdgeSv2(context.Background(), tc.args, stdio{in: strings.NewReader(""), out: &out, err: &out})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
}

// TestSv2SharesEndToEnd runs a miner through edge sv2 into dev's Kafka,
// and checks that dev's meter counts the accepted shares with the
// sv2-shares policy.
func TestSv2SharesEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	path := filepath.Join(t.TempDir(), "relaymeter.yaml")
	cfg := "services:\n  - id: sv2\n    protocol: STRATUM_V2\n    policy: sv2-shares\n    params: {\"by\": \"sum\"}\n"
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	dev := startDev(t, buildBinary(t), dataDir, "--config", path)

	authority, keyFile, poolNoise, poolAuthority := sv2Keys(t)
	pool, err := sv2sim.StartPool(sv2sim.PoolConfig{Noise: poolNoise, RejectEvery: 3, ShareValue: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	addr, logs, stop := startEdgeSv2(t, "--upstream", pool.Addr(), "--supplier", "sup", "--kafka", dev.kafka,
		"--open-access", "--authority-key-file", keyFile, "--upstream-authority-pubkey", poolAuthority.String())
	res, err := sv2sim.RunMiner(ctx, sv2sim.MinerConfig{Addr: addr, Noise: &noise.Config{AuthorityKey: authority.PublicKey()},
		UserIdentity: "acme.rig1", Shares: 9})
	if err != nil {
		t.Fatalf("miner: %v\n%s", err, logs)
	}
	// Nonces 3, 6 and 9 are rejected.
	if res.Accepted != 6 || res.Rejected != 3 {
		t.Fatalf("accepted %d rejected %d, want 6 and 3", res.Accepted, res.Rejected)
	}
	stop()
	msgs := res.Stats.FramesIn + res.Stats.FramesOut
	u := waitUsage(t, ctx, dev.api, "kill-test-key", `{service:"sv2"}`, msgs)
	if u.Messages != msgs || u.Relays != 6*100 {
		t.Errorf("usage %+v; want %d messages and %d relays (6 accepted shares of 100)", u, msgs, 6*100)
	}
}

func TestSv2CertRenewal(t *testing.T) {
	authority, err := noise.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	r, err := newCertRenewer(authority, time.Hour, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	first := r.config()
	now = now.Add(20 * time.Minute)
	if r.config() != first {
		t.Error("certificate renewed before half its validity")
	}
	now = now.Add(15 * time.Minute)
	second := r.config()
	if second == first || second.StaticKey != first.StaticKey {
		t.Fatal("certificate not renewed past half its validity, or the static key changed")
	}
	// Past the first certificate's end, the second still verifies.
	now = now.Add(30 * time.Minute)
	server := first.StaticKey.PublicKey()
	if err := first.Certificate.Verify(authority.PublicKey(), server, now, -1); !errors.Is(err, noise.ErrCertificateExpired) {
		t.Errorf("first certificate at +65m: %v, want expired", err)
	}
	if err := second.Certificate.Verify(authority.PublicKey(), server, now, -1); err != nil {
		t.Errorf("renewed certificate at +65m: %v", err)
	}
}

func TestSv2RegistryAccounts(t *testing.T) {
	pool, _ := pgtest.DB(t)
	reg := identity.NewRegistry(pool)
	ctx := context.Background()
	acme, err := reg.CreateApplication(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	off, err := reg.CreateApplication(ctx, "off")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.SetApplicationDisabled(ctx, off.ID, true); err != nil {
		t.Fatal(err)
	}
	a := newRegistryAccounts(reg, time.Minute)
	for _, tc := range []struct {
		account, id string
		ok          bool
	}{
		{"acme", acme.ID, true},
		{acme.ID, acme.ID, true},
		{"off", off.ID, false},
		{"nobody", "", false},
	} {
		id, ok, err := a.Application(ctx, tc.account)
		if err != nil || ok != tc.ok || (ok && id != tc.id) {
			t.Errorf("%s: %q %v %v; want %q %v", tc.account, id, ok, err, tc.id, tc.ok)
		}
	}
	// An answer is cached: an application created since is seen once it expires.
	if _, err := reg.CreateApplication(ctx, "nobody"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := a.Application(ctx, "nobody"); ok {
		t.Error("cached answer not used")
	}
	if _, ok, _ := newRegistryAccounts(reg, time.Minute).Application(ctx, "nobody"); !ok {
		t.Error("a new application is not found")
	}
}

// TestSv2ChannelsOfTwoAccountsMetered runs one miner connection with a
// channel for acme and one for beta through edge sv2 into dev: each
// account's usage is exactly its own frames and accepted shares, the
// connection's SetupConnection and its answer counting for the first.
func TestSv2ChannelsOfTwoAccountsMetered(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	path := filepath.Join(t.TempDir(), "relaymeter.yaml")
	cfg := "services:\n  - id: sv2\n    protocol: STRATUM_V2\n    policy: sv2-shares\n    params: {\"by\": \"sum\"}\n"
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	dev := startDev(t, buildBinary(t), t.TempDir(), "--config", path)
	authority, keyFile, poolNoise, poolAuthority := sv2Keys(t)
	pool, err := sv2sim.StartPool(sv2sim.PoolConfig{Noise: poolNoise, RejectEvery: 3, ShareValue: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	addr, logs, stop := startEdgeSv2(t, "--upstream", pool.Addr(), "--supplier", "sup", "--kafka", dev.kafka,
		"--open-access", "--authority-key-file", keyFile, "--upstream-authority-pubkey", poolAuthority.String())
	res, err := sv2sim.RunMiner(ctx, sv2sim.MinerConfig{Addr: addr, Noise: &noise.Config{AuthorityKey: authority.PublicKey()},
		UserIdentity: "acme.rig1", MoreUsers: []string{"beta.rig1"}, Shares: 5})
	if err != nil {
		t.Fatalf("miner: %v\n%s", err, logs)
	}
	stop()
	// Per channel, nonces 1-5: 3 rejected, 4 accepted.
	for _, ch := range res.ByChannel {
		if ch.Accepted != 4 || ch.Rejected != 1 {
			t.Fatalf("channel %+v, want 4 accepted 1 rejected", ch)
		}
	}
	// acme: SetupConnection and its answer, its open (request, answer, job,
	// prev hash), 5 shares and answers; beta: its open and its shares.
	want := map[string]int64{"acme": 2 + 4 + 10, "beta": 4 + 10}
	if want["acme"]+want["beta"] != res.Stats.FramesIn+res.Stats.FramesOut {
		t.Fatalf("miner exchanged %d frames, want %d", res.Stats.FramesIn+res.Stats.FramesOut, want["acme"]+want["beta"])
	}
	for app, msgs := range want {
		u := waitUsage(t, ctx, dev.api, "kill-test-key", `{service:"sv2", application:"`+app+`"}`, msgs)
		if u.Messages != msgs || u.Relays != 4*100 {
			t.Errorf("%s usage %+v; want %d messages and %d relays", app, u, msgs, 4*100)
		}
	}
}

// TestSv2EdgeCommandReconnect runs edge sv2 with --advertise: a pool's
// Reconnect reaches the miner rewritten to the advertised address, and the
// miner's next connection through the edge goes where the pool asked.
func TestSv2EdgeCommandReconnect(t *testing.T) {
	cluster := kafkatest.Start(t, kafkatest.Options{Partitions: 2, Topics: []string{topicMessages}})
	authority, keyFile, poolNoise, poolAuthority := sv2Keys(t)
	pool, err := sv2sim.StartPool(sv2sim.PoolConfig{Noise: poolNoise})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	// The pool's second server, certified by the same authority.
	pool2, err := sv2sim.StartPool(sv2sim.PoolConfig{Noise: poolNoise})
	if err != nil {
		t.Fatal(err)
	}
	defer pool2.Close()
	_, p2, _ := net.SplitHostPort(pool2.Addr())
	port2, _ := strconv.Atoi(p2)
	addr, logs, stop := startEdgeSv2(t, "--upstream", pool.Addr(), "--supplier", "sup", "--kafka", strings.Join(cluster.Brokers, ","),
		"--open-access", "--authority-key-file", keyFile, "--upstream-authority-pubkey", poolAuthority.String(),
		"--advertise", "edge.example:3336", "--reconnect-ttl", "1m")
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	miner := &noise.Config{AuthorityKey: authority.PublicKey()}
	var once sync.Once
	res, err := sv2sim.RunMiner(ctx, sv2sim.MinerConfig{Addr: addr, Noise: miner, UserIdentity: "acme.rig1", Shares: 20,
		Mined: func(n int) { once.Do(func() { pool.Reconnect("", uint16(port2)) }) }})
	if err != nil {
		t.Fatalf("miner: %v\n%s", err, logs)
	}
	if r := res.Reconnect; r == nil || r.NewHost != "edge.example" || r.NewPort != 3336 {
		t.Fatalf("miner got Reconnect %+v, want edge.example:3336", r)
	}
	back, err := sv2sim.RunMiner(ctx, sv2sim.MinerConfig{Addr: addr, Noise: miner, UserIdentity: "acme.rig1", Shares: 2})
	if err != nil || back.Accepted != 2 {
		t.Fatalf("back through the edge: %+v %v\n%s", back, err, logs)
	}
	if got := pool2.Stats().FramesIn; got == 0 {
		t.Errorf("the pool's second server got nothing:\n%s", logs)
	}
}
