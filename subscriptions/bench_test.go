package subscriptions_test

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/relaymeter/relaymeter/subscriptions"
)

// A geth newHeads notification (mainnet, 2024), about 1.1 KiB.
const gethHead = `{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":%s,"result":{"parentHash":"0x9b2c3b1c8b5d4b1f0b0f3c1e7a2d5f6e8c9b0a1d2e3f4a5b6c7d8e9f0a1b2c3d","sha3Uncles":"0x1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347","miner":"0x95222290dd7278aa3ddd389cc1e1d165cc4bafe5","stateRoot":"0x2b5a5c3d8e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b","transactionsRoot":"0x4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d","receiptsRoot":"0x6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f","logsBloom":"0x00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000","difficulty":"0x0","number":"0x12a05f2","gasLimit":"0x1c9c380","gasUsed":"0xe4e1c0","timestamp":"0x65f1a2b3","extraData":"0x6265617665726275696c642e6f7267","mixHash":"0x8a9b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b","nonce":"0x0000000000000000","baseFeePerGas":"0x3b9aca00","withdrawalsRoot":"0xa1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2","blobGasUsed":"0x0","excessBlobGas":"0x0","parentBeaconBlockRoot":"0xb2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2c3","hash":"0x%064x"}}}`

func headMsg(sub string, n int) []byte {
	return []byte(fmt.Sprintf(gethHead, sub, n))
}

// BenchmarkNotification is the bookkeeping's cost per newHeads
// notification: before any move (the hash remembered), and after one (the
// id rewritten in place, the hash checked and remembered).
func BenchmarkNotification(b *testing.B) {
	const up1, up2 = `"0x9cef478923ff08bf67fde6c64013158d"`, `"0x2b1d7a2f3c4e5d6f7a8b9c0d1e2f3a4b"`
	for _, moved := range []bool{false, true} {
		b.Run("moved="+strconv.FormatBool(moved), func(b *testing.B) {
			c := subscriptions.New(subscriptions.Config{})
			c.FromClient(1, []byte(`{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["newHeads"]}`))
			c.FromUpstream([]byte(`{"jsonrpc":"2.0","id":1,"result":` + up1 + `}`))
			up := up1
			if moved {
				c.Lost(1)
				for _, r := range c.Resubscribe() {
					id := r[len(`{"jsonrpc":"2.0","id":`):]
					id = id[:len(id)-len(`,"method":"eth_subscribe","params":["newHeads"]}`)]
					c.FromUpstream([]byte(`{"jsonrpc":"2.0","id":` + string(id) + `,"result":` + up2 + `}`))
				}
				up = up2
			}
			msgs := make([][]byte, 256)
			for i := range msgs {
				msgs[i] = headMsg(up, i)
			}
			buf := make([]byte, 0, 2048)
			b.SetBytes(int64(len(msgs[0])))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				buf = append(buf[:0], msgs[i%len(msgs)]...)
				if _, v := c.FromUpstream(buf); v != subscriptions.Forward && !(moved && i >= len(msgs)) {
					b.Fatal(v)
				}
			}
		})
	}
}

// BenchmarkRequest is the bookkeeping's cost per request and answer: the
// request tracked in flight, then forgotten.
func BenchmarkRequest(b *testing.B) {
	c := subscriptions.New(subscriptions.Config{})
	req := []byte(`{"jsonrpc":"2.0","id":12345,"method":"eth_call","params":[{"to":"0x6b175474e89094c44da98b954eedeac495271d0f","data":"0x70a08231000000000000000000000000000000000000000000000000000000000000dead"},"latest"]}`)
	res := []byte(`{"jsonrpc":"2.0","id":12345,"result":"0x0000000000000000000000000000000000000000000000000000000000000001"}`)
	b.ReportAllocs()
	var seq uint64
	for b.Loop() {
		seq++
		c.FromClient(seq, req)
		c.FromUpstream(res)
	}
}
