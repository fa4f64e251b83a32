package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/eth/ethconfig"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
	"github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/internal/eventtest"
)

// TestThirdPartyClient points go-ethereum's own client, unchanged, at the
// edge in front of a real geth node (the simulated backend: geth's eth
// service and JSON-RPC server, blocks sealed by Commit), and checks that the
// client sees correct results and that usage counts exactly the frames
// that crossed the edge: those a TCP tap between the client and the edge
// decoded, which must also be the Message events recorded in Kafka.
func TestThirdPartyClient(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const app = "geth-ethclient"

	// The real node: geth with its WebSocket JSON-RPC endpoint on loopback.
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	from := crypto.PubkeyToAddress(key.PublicKey)
	// The simulated backend keeps its node private, so the port is chosen
	// here: one the kernel just handed out and took back.
	wsAddr, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(wsAddr)
	wsPort, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	funds := new(big.Int).Mul(big.NewInt(100), big.NewInt(1e18))
	sim := simulated.NewBackend(types.GenesisAlloc{from: {Balance: funds}}, func(nc *node.Config, _ *ethconfig.Config) {
		nc.WSHost, nc.WSPort, nc.WSModules = "127.0.0.1", wsPort, []string{"eth", "net", "web3"}
	})
	defer sim.Close()
	nodeURL := "ws://" + wsAddr

	ts := startTestStack(t, ctx, "thirdparty", nodeURL)
	tap := startTap(t, ts.edge)

	// The third-party client, through the tap, to the edge.
	ec, err := ethclient.DialContext(ctx, "ws://"+tap.addr()+"/"+app)
	if err != nil {
		t.Fatal(err)
	}
	frames := 0 // what the client's calls imply: a request and a response each, plus notifications
	calls := func(n int) { frames += 2 * n }

	chainID, err := ec.ChainID(ctx)
	calls(1)
	if err != nil || chainID.Int64() != 1337 {
		t.Fatalf("ChainID = %v, %v; want 1337", chainID, err)
	}
	if n, err := ec.BlockNumber(ctx); err != nil || n != 0 {
		t.Fatalf("BlockNumber = %d, %v; want 0", n, err)
	}
	calls(1)
	heads := make(chan *types.Header, 16)
	sub, err := ec.SubscribeNewHead(ctx, heads)
	calls(1)
	if err != nil {
		t.Fatal(err)
	}
	var last *types.Header
	// commit seals a block and waits for its newHeads notification.
	commit := func() *types.Header {
		t.Helper()
		hash := sim.Commit()
		select {
		case h := <-heads:
			frames++
			if h.Hash() != hash {
				t.Fatalf("head %d hash %s, committed %s", h.Number, h.Hash(), hash)
			}
			if last != nil && (h.Number.Uint64() != last.Number.Uint64()+1 || h.ParentHash != last.Hash()) {
				t.Fatalf("head %d (parent %s) does not follow head %d (%s)", h.Number, h.ParentHash, last.Number, last.Hash())
			}
			if last == nil && h.Number.Uint64() != 1 {
				t.Fatalf("first head is %d, want 1", h.Number)
			}
			last = h
			return h
		case err := <-sub.Err():
			t.Fatalf("subscription: %v", err)
		case <-ctx.Done():
			t.Fatal("no newHeads notification for a committed block")
		}
		return nil
	}
	for range 3 {
		commit()
	}
	hdr, err := ec.HeaderByNumber(ctx, nil)
	calls(1)
	if err != nil || hdr.Hash() != last.Hash() {
		t.Fatalf("HeaderByNumber(latest) = %v, %v; want head %d", hdr, err, last.Number)
	}
	if bal, err := ec.BalanceAt(ctx, from, nil); err != nil || bal.Cmp(funds) != 0 {
		t.Fatalf("BalanceAt = %v, %v; want %v", bal, err, funds)
	}
	calls(1)

	// A signed transfer, sent, mined and its receipt read back.
	nonce, err := ec.PendingNonceAt(ctx, from)
	calls(1)
	if err != nil || nonce != 0 {
		t.Fatalf("PendingNonceAt = %d, %v; want 0", nonce, err)
	}
	tip, err := ec.SuggestGasTipCap(ctx)
	calls(1)
	if err != nil {
		t.Fatal(err)
	}
	to, value := common.Address{0x42}, big.NewInt(12345)
	tx, err := types.SignNewTx(key, types.LatestSignerForChainID(chainID), &types.DynamicFeeTx{
		ChainID: chainID, Nonce: nonce, GasTipCap: tip, Gas: 21000, To: &to, Value: value,
		GasFeeCap: new(big.Int).Add(tip, new(big.Int).Mul(hdr.BaseFee, big.NewInt(2))),
	})
	if err != nil {
		t.Fatal(err)
	}
	err = ec.SendTransaction(ctx, tx)
	calls(1)
	if err != nil {
		t.Fatal(err)
	}
	mined := commit()
	rcpt, err := ec.TransactionReceipt(ctx, tx.Hash())
	calls(1)
	if err != nil || rcpt.Status != types.ReceiptStatusSuccessful || rcpt.TxHash != tx.Hash() ||
		rcpt.BlockHash != mined.Hash() || rcpt.BlockNumber.Cmp(mined.Number) != 0 || rcpt.GasUsed != 21000 {
		t.Fatalf("TransactionReceipt = %+v, %v; want success in block %d", rcpt, err, mined.Number)
	}
	if bal, err := ec.BalanceAt(ctx, to, nil); err != nil || bal.Cmp(value) != 0 {
		t.Fatalf("BalanceAt(recipient) = %v, %v; want %v", bal, err, value)
	}
	calls(1)

	// Pipelined calls on the one connection, answered in any order.
	var wg sync.WaitGroup
	hashes := make([]common.Hash, last.Number.Uint64()+1)
	errs := make([]error, len(hashes))
	for i := range hashes {
		wg.Go(func() {
			h, err := ec.HeaderByNumber(ctx, big.NewInt(int64(i)))
			if err == nil {
				hashes[i] = h.Hash()
				if h.Number.Int64() != int64(i) {
					err = fmt.Errorf("got header %d", h.Number)
				}
			}
			errs[i] = err
		})
	}
	wg.Wait()
	calls(len(hashes))
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if hashes[len(hashes)-1] != last.Hash() || hashes[len(hashes)-2] != last.ParentHash {
		t.Fatalf("pipelined headers %v do not end with the last heads", hashes)
	}

	// A batch: one frame each way.
	var (
		bChain, bNumber hexutil.Big
		bBalance        hexutil.Big
		bTx             *types.Transaction
	)
	batch := []rpc.BatchElem{
		{Method: "eth_chainId", Result: &bChain},
		{Method: "eth_blockNumber", Result: &bNumber},
		{Method: "eth_getBalance", Args: []any{to, "latest"}, Result: &bBalance},
		{Method: "eth_getTransactionByHash", Args: []any{tx.Hash()}, Result: &bTx},
	}
	if err := ec.Client().BatchCallContext(ctx, batch); err != nil {
		t.Fatal(err)
	}
	calls(1)
	for _, b := range batch {
		if b.Error != nil {
			t.Fatalf("batch %s: %v", b.Method, b.Error)
		}
	}
	if bChain.ToInt().Cmp(chainID) != 0 || bNumber.ToInt().Cmp(last.Number) != 0 || bBalance.ToInt().Cmp(value) != 0 ||
		bTx == nil || bTx.Hash() != tx.Hash() {
		t.Fatalf("batch results: chain %v, number %v, balance %v, tx %v", &bChain, &bNumber, &bBalance, bTx)
	}

	sub.Unsubscribe() // eth_unsubscribe, waiting for its answer
	calls(1)
	if err, open := <-sub.Err(); open || err != nil {
		t.Fatalf("subscription after Unsubscribe: %v (channel open: %v)", err, open)
	}
	ec.Close()
	tapped := tap.wait(t, ctx)

	// What crossed the edge, as the tap decoded it from the wire.
	var tapBytes int64
	for _, dir := range tapped {
		for _, m := range dir {
			tapBytes += int64(len(m.payload))
		}
	}
	crossed := len(tapped[0]) + len(tapped[1])
	if crossed != frames || len(tapped[0]) != len(tapped[1])-int(last.Number.Int64()) {
		t.Fatalf("tap saw %d frames to the edge and %d from it, the client's calls imply %d in all with %d notifications",
			len(tapped[0]), len(tapped[1]), frames, last.Number)
	}

	// What the edge recorded: the stream's Message events, in Kafka.
	evs := streamOf(t, ctx, ts.cluster.Brokers, app)
	var recorded [2][]*event.Message
	var wire int64
	for _, ev := range evs[1 : len(evs)-1] {
		m := ev.GetMessage()
		if m == nil {
			t.Fatalf("seq %d is not a Message: %v", ev.Seq, ev)
		}
		d := 0
		if m.Direction == event.Direction_UPSTREAM_TO_CLIENT {
			d = 1
		}
		recorded[d] = append(recorded[d], m)
		wire += int64(m.WireSize)
	}
	for d, name := range []string{"client to upstream", "upstream to client"} {
		if len(recorded[d]) != len(tapped[d]) {
			t.Fatalf("%s: %d Message events, the tap saw %d frames", name, len(recorded[d]), len(tapped[d]))
		}
		for i, m := range recorded[d] {
			w := tapped[d][i]
			if sum := sha256.Sum256(w.payload); !bytes.Equal(m.PayloadSha256, sum[:]) || m.PayloadSize != uint64(len(w.payload)) || m.Binary != w.binary {
				t.Fatalf("%s message %d: recorded %d bytes sha256 %x binary %v; crossed %d bytes sha256 %x binary %v: %.200s",
					name, i, m.PayloadSize, m.PayloadSha256, m.Binary, len(w.payload), sum, w.binary, w.payload)
			}
		}
	}
	closed := evs[len(evs)-1].GetClosed()
	if closed.MessagesToUpstream != uint64(len(tapped[0])) || closed.MessagesToClient != uint64(len(tapped[1])) ||
		closed.CloseCode != 1000 {
		t.Fatalf("StreamClosed %v; tap saw %d and %d messages, the client closed with 1000", closed, len(tapped[0]), len(tapped[1]))
	}
	if wire != tapBytes {
		t.Fatalf("recorded wire size %d, the tap saw %d payload bytes", wire, tapBytes)
	}

	// What the application is billed for: exactly those frames.
	want := usageCounts{Messages: int64(crossed), Relays: int64(crossed), Units: int64(crossed), Bytes: tapBytes}
	got := waitUsage(t, ctx, "http://"+ts.api, "test-key", `{service:"eth", application:"`+app+`"}`, want.Messages)
	if got != want {
		t.Fatalf("usage = %+v, want %+v", got, want)
	}
	t.Logf("%d frames crossed the edge (%d to the node, %d from it), %d bytes; usage %+v", crossed, len(tapped[0]), len(tapped[1]), tapBytes, got)
}

// streamOf reads the topic until it holds the closed stream of app, and
// returns its events (eventtest checks seq, keys and the hash chain).
func streamOf(t *testing.T, ctx context.Context, brokers []string, app string) []*event.Event {
	t.Helper()
	for {
		var found []*event.Event
		var n int
		for _, evs := range eventtest.StreamEvents(t, eventtest.ReadTopic(t, brokers, topicMessages, 4)) {
			if o := evs[0].GetOpened(); o != nil && o.Application == app {
				found, n = evs, n+1
			}
		}
		if n > 1 {
			t.Fatalf("%d streams for %s, want 1", n, app)
		}
		if found != nil && found[len(found)-1].GetClosed() != nil {
			return found
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no closed stream for %s in Kafka", app)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// tappedMsg is one WebSocket data message as it crossed the tap.
type tappedMsg struct {
	binary  bool
	payload []byte
}

// tcpTap is a TCP pass-through that forwards every byte unchanged and
// decodes the WebSocket messages in each direction of its one connection:
// [0] towards the edge, [1] from it. Control frames (ping, pong, close)
// are not messages.
type tcpTap struct {
	ln     net.Listener
	target string
	done   chan struct{}
	mu     sync.Mutex
	msgs   [2][]tappedMsg
	errs   []error
}

func startTap(t *testing.T, target string) *tcpTap {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tp := &tcpTap{ln: ln, target: target, done: make(chan struct{})}
	t.Cleanup(func() { ln.Close() })
	go tp.serve()
	return tp
}

func (tp *tcpTap) addr() string { return tp.ln.Addr().String() }

// serve relays the first connection only: a second would be a client
// reconnecting, which the test must notice.
func (tp *tcpTap) serve() {
	defer close(tp.done)
	c, err := tp.ln.Accept()
	tp.ln.Close()
	if err != nil {
		tp.fail(err)
		return
	}
	defer c.Close()
	e, err := net.Dial("tcp", tp.target)
	if err != nil {
		tp.fail(err)
		return
	}
	defer e.Close()
	var wg sync.WaitGroup
	wg.Go(func() { tp.pipe(e.(*net.TCPConn), c, 0) })
	wg.Go(func() { tp.pipe(c.(*net.TCPConn), e, 1) })
	wg.Wait()
}

func (tp *tcpTap) fail(err error) {
	tp.mu.Lock()
	tp.errs = append(tp.errs, err)
	tp.mu.Unlock()
}

// pipe copies src to dst, decoding what it copies: the HTTP handshake,
// then WebSocket frames. Every byte read is written on at once (the decoder
// reads through a TeeReader), so decoding never holds data back.
func (tp *tcpTap) pipe(dst *net.TCPConn, src net.Conn, dir int) {
	defer dst.CloseWrite()
	r := bufio.NewReader(io.TeeReader(src, dst))
	err := func() error {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return fmt.Errorf("handshake: %w", err)
			}
			if line == "\r\n" {
				break
			}
		}
		var msg *tappedMsg
		for {
			var h [2]byte
			if _, err := io.ReadFull(r, h[:]); err != nil {
				if errors.Is(err, io.EOF) && msg == nil {
					return nil
				}
				return err
			}
			fin, op, masked, n := h[0]&0x80 != 0, h[0]&0x0f, h[1]&0x80 != 0, uint64(h[1]&0x7f)
			if h[0]&0x70 != 0 {
				return fmt.Errorf("frame with RSV bits %#x: an extension was negotiated", h[0])
			}
			switch n {
			case 126, 127:
				ext := make([]byte, map[uint64]int{126: 2, 127: 8}[n])
				if _, err := io.ReadFull(r, ext); err != nil {
					return err
				}
				n = 0
				for _, b := range ext {
					n = n<<8 | uint64(b)
				}
			}
			if n > 64<<20 {
				return fmt.Errorf("frame of %d bytes", n)
			}
			var mask [4]byte
			if masked {
				if _, err := io.ReadFull(r, mask[:]); err != nil {
					return err
				}
			}
			payload := make([]byte, n)
			if _, err := io.ReadFull(r, payload); err != nil {
				return err
			}
			for i := range payload {
				payload[i] ^= mask[i%4] // a zero mask when unmasked
			}
			switch {
			case op >= 8: // control frame, possibly between fragments
				continue
			case op == 0:
				if msg == nil {
					return errors.New("continuation frame outside a message")
				}
				msg.payload = append(msg.payload, payload...)
			case op == 1 || op == 2:
				if msg != nil {
					return errors.New("data frame inside a fragmented message")
				}
				msg = &tappedMsg{binary: op == 2, payload: payload}
			default:
				return fmt.Errorf("reserved opcode %d", op)
			}
			if fin {
				tp.mu.Lock()
				tp.msgs[dir] = append(tp.msgs[dir], *msg)
				tp.mu.Unlock()
				msg = nil
			}
		}
	}()
	if err != nil && !errors.Is(err, net.ErrClosed) && !isConnErr(err) {
		tp.fail(fmt.Errorf("direction %d: %w", dir, err))
	}
	_, _ = io.Copy(dst, src) // whatever follows a decoding error still crosses
}

// isConnErr is a failed read or write of a connection being torn down.
func isConnErr(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne)
}

// wait returns the messages once the connection has ended both ways.
func (tp *tcpTap) wait(t *testing.T, ctx context.Context) [2][]tappedMsg {
	t.Helper()
	select {
	case <-tp.done:
	case <-ctx.Done():
		t.Fatal("tap: the connection did not end")
	}
	tp.mu.Lock()
	defer tp.mu.Unlock()
	if len(tp.errs) > 0 {
		t.Fatalf("tap: %v", errors.Join(tp.errs...))
	}
	return tp.msgs
}
