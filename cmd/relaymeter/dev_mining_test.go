package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/relaymeter/relaymeter/internal/kafkatest"
	"github.com/relaymeter/relaymeter/internal/pgtest"
	"github.com/relaymeter/relaymeter/internal/sv2sim"
	"github.com/relaymeter/relaymeter/stratum/sv2/noise"
)

// TestDevDemoMining runs dev --demo in process: its built-in Sv2 pool and
// Beam node, with their miners, make STRATUM_V2 and BEAM usage within
// seconds; a miner of the test's own verifies the edge against the printed
// `sv2 authority` key, and its accepted shares are its relays exactly.
func TestDevDemoMining(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_, dbURL := pgtest.DB(t)
	kc := kafkatest.Start(t, kafkatest.Options{Partitions: 4, Topics: []string{topicMessages, topicClaims}})
	dir := t.TempDir()
	httpAddr := freeAddr(t)
	out := &lockedBuffer{}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan int, 1)
	go func() {
		done <- run(runCtx, []string{"dev", "--demo", "--demo-clients", "0", "--data-dir", dir, "--ws-listen", freeAddr(t), "--http", httpAddr,
			"--database-url", dbURL, "--kafka", strings.Join(kc.Brokers, ","), "--log-level", "warn"},
			stdio{in: strings.NewReader(""), out: out, err: out})
	}()
	authorityRe := regexp.MustCompile(`(?m)^sv2 authority (\S+)$`)
	sv2Re := regexp.MustCompile(`(?m)^  sv2 edge   (\S+)`)
	beamRe := regexp.MustCompile(`(?m)^  beam edge  (\S+)`)
	keyRe := regexp.MustCompile(`(?m)^  admin key  (\S+)$`)
	for deadline := time.Now().Add(60 * time.Second); !strings.Contains(out.String(), "  data       "); time.Sleep(20 * time.Millisecond) {
		select {
		case code := <-done:
			t.Fatalf("dev exited %d:\n%s", code, out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("dev did not start:\n%s", out)
		}
	}
	s := out.String()
	am, sm, bm, km := authorityRe.FindStringSubmatch(s), sv2Re.FindStringSubmatch(s), beamRe.FindStringSubmatch(s), keyRe.FindStringSubmatch(s)
	if am == nil || sm == nil || bm == nil || km == nil {
		t.Fatalf("dev does not print the sv2 authority, both edges and the admin key:\n%s", s)
	}
	authority, err := noise.ParsePublicKey(am[1])
	if err != nil {
		t.Fatalf("sv2 authority %q: %v", am[1], err)
	}
	base, admin := "http://"+httpAddr, km[1]

	// The demo miners alone make usage of both protocols. The first
	// messages metered may come before any accepted share: poll.
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		u := waitUsage(t, ctx, base, admin, `{protocol:"STRATUM_V2"}`, 1)
		if u.Relays > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("STRATUM_V2 usage %+v: want relays from the demo miners' accepted shares", u)
		}
	}
	// beam-solutions prices each accepted solution at 1.
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		u := waitUsage(t, ctx, base, admin, `{protocol:"BEAM"}`, 1)
		if u.Bytes > 0 && u.Relays > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("BEAM usage %+v: want bytes, and relays from the demo miner's accepted solutions", u)
		}
	}

	// A miner that pins the printed authority: the demo pool rejects every
	// fifth share, so 8 of 9 are accepted, and sv2-shares prices each at 1.
	res, err := sv2sim.RunMiner(ctx, sv2sim.MinerConfig{Addr: sm[1], Noise: &noise.Config{AuthorityKey: authority},
		UserIdentity: "acme.rig1", Shares: 9})
	if err != nil {
		t.Fatalf("miner pinning the printed authority: %v\n%s", err, out)
	}
	if res.Accepted != 8 || res.Rejected != 1 {
		t.Fatalf("accepted %d rejected %d, want 8 and 1", res.Accepted, res.Rejected)
	}
	msgs := res.Stats.FramesIn + res.Stats.FramesOut
	if u := waitUsage(t, ctx, base, admin, `{service:"sv2", application:"acme"}`, msgs); u.Messages != msgs || u.Relays != 8 {
		t.Errorf("acme's sv2 usage %+v, want %d messages and 8 relays", u, msgs)
	}
	// Another authority's key is refused by the edge's certificate.
	other, _ := noise.GeneratePrivateKey()
	if _, err := sv2sim.RunMiner(ctx, sv2sim.MinerConfig{Addr: sm[1], Noise: &noise.Config{AuthorityKey: other.PublicKey()},
		UserIdentity: "acme.rig2", Shares: 1}); err == nil {
		t.Error("a miner pinning another authority connected")
	}

	stop()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("dev exited %d:\n%s", code, out)
		}
	case <-ctx.Done():
		t.Fatal("dev did not stop")
	}
}

// TestDevMiningFlags checks that an edge's flags without the edge, or
// without what the edge needs, are refused before dev starts anything.
func TestDevMiningFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--sv2-upstream", "p:1", "--sv2-upstream-authority-pubkey", "k"}, "give --sv2-listen too"},
		{[]string{"--sv2-listen", "127.0.0.1:0", "--sv2-upstream", "p:1"}, "needs --sv2-upstream-authority-pubkey"},
		{[]string{"--sv2-listen", "127.0.0.1:0"}, "--sv2-listen needs --sv2-upstream"},
		{[]string{"--sv2-listen", "127.0.0.1:0", "--sv2-reconnect", "drop"}, "--sv2-reconnect"},
		{[]string{"--beam-upstream-insecure"}, "give --beam-listen too"},
		{[]string{"--beam-listen", "127.0.0.1:0"}, "--beam-listen needs --beam-upstream"},
		{[]string{"--beam-listen", "127.0.0.1:0", "--beam-upstream", "n:1"}, "needs --beam-upstream-ca"},
	} {
		out := &lockedBuffer{}
		dir := t.TempDir()
		code := run(context.Background(), append([]string{"dev", "--data-dir", dir}, tc.args...), stdio{in: strings.NewReader(""), out: out, err: out})
		if code == 0 || !strings.Contains(out.String(), tc.want) {
			t.Errorf("dev %q: exit %d, output %q; want an error containing %q", tc.args, code, out, tc.want)
		}
	}
}

// TestDevMiningKeysKept checks that dev's Sv2 authority key and Beam
// certificate are made once and kept in the data dir.
func TestDevMiningKeysKept(t *testing.T) {
	dir := t.TempDir()
	k1, err := devAuthorityKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := devAuthorityKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if k1.PublicKey() != k2.PublicKey() {
		t.Error("the authority key changed between two runs")
	}
	if _, err := readAuthorityKey(filepath.Join(dir, "sv2-authority-key")); err != nil {
		t.Errorf("--authority-key-file does not read dev's key: %v", err)
	}
	c1, _, err := devBeamCert(dir)
	if err != nil {
		t.Fatal(err)
	}
	c2, pool, err := devBeamCert(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(c1.Certificates[0].Certificate[0], c2.Certificates[0].Certificate[0]) {
		t.Error("the Beam edge certificate changed between two runs")
	}
	leaf, err := x509.ParseCertificate(c2.Certificates[0].Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "127.0.0.1"}); err != nil {
		t.Errorf("the certificate does not verify against the pool dev gives miners: %v", err)
	}
}
