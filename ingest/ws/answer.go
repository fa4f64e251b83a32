package ws

import (
	"strconv"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/ingest/record"
)

// JSON-RPC error codes of the answers the edge gives itself.
const (
	// codeInvalidRequest answers a batch over Limits.MaxBatch.
	codeInvalidRequest = -32600
	// codeMethodNotFound answers a method the service does not let through.
	codeMethodNotFound = -32601
	// codeLimitExceeded answers a request beyond the rate limit (and, at
	// the handshake, a client address over its connections: HTTP 429).
	codeLimitExceeded = -32005
)

var nullID = []byte("null")

// maxAnswerID is the longest request id (its JSON text) the edge echoes in
// an answer of its own; a longer one is answered under id null. It keeps
// every answer, and the scratch space it is built in, under 2 KiB, whatever
// a client sends: ids are short, and a client that sends a megabyte of one
// is not owed it back.
const maxAnswerID = 1024

// checkLimits sets m's origin and, for a client message, says whether the
// edge forwards it (d.verdict pass) or absorbs it: then m is marked
// absorbed_by_edge, and d.ans holds the edge's answer, empty when the
// message calls for none (JSON-RPC answers no notification or response).
// It is called once m is classified, while the payload it was classified
// from is intact, and does not allocate when the message passes.
func (d *dir) checkLimits(m *event.Message) {
	d.verdict, d.ans = pass, d.ans[:0]
	if d.src != &d.p.client {
		m.Origin = event.Origin_UPSTREAM
		return
	}
	m.Origin = event.Origin_CLIENT
	v := d.p.limits.check(m)
	if v == pass {
		return
	}
	d.verdict, m.AbsorbedByEdge = v, true
	d.p.e.m.limited[v].Inc()
	if m.Role != event.Role_REQUEST {
		return
	}
	id := nullID // a batch is answered as a whole
	if m.BatchSize == 0 && len(d.cls.env.id) > 0 && len(d.cls.env.id) <= maxAnswerID {
		id = d.cls.env.id
	}
	d.ans = d.p.limits.appendAnswer(d.ans, v, id, m)
}

// appendAnswer appends the JSON-RPC error object answering, for v, the
// request m whose id is id (raw JSON).
func (c *connLimits) appendAnswer(dst []byte, v verdict, id []byte, m *event.Message) []byte {
	dst = append(dst, `{"jsonrpc":"2.0","id":`...)
	dst = append(dst, id...)
	dst = append(dst, `,"error":{"code":`...)
	switch v {
	case batchTooLarge:
		dst = strconv.AppendInt(dst, codeInvalidRequest, 10)
		dst = append(dst, `,"message":"The maximum batch size that can be sent over a websocket connection is `...)
		dst = strconv.AppendInt(dst, int64(c.l.maxBatch), 10)
		dst = append(dst, `. Please decrease the batch size and try again."}}`...)
	case methodDenied:
		dst = strconv.AppendInt(dst, codeMethodNotFound, 10)
		dst = append(dst, `,"message":"the method `...)
		dst = appendJSONText(dst, c.l.denied(m))
		dst = append(dst, ` does not exist/is not available"}}`...)
	default:
		dst = strconv.AppendInt(dst, codeLimitExceeded, 10)
		dst = append(dst, `,"message":"rate limit exceeded"}}`...)
	}
	return dst
}

// appendJSONText appends s, valid UTF-8 (cleaned from the wire), escaped
// for the inside of a JSON string.
func appendJSONText(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		case c < utf8.RuneSelf:
			dst = append(dst, c)
		default:
			_, n := utf8.DecodeRuneInString(s[i:])
			dst = append(dst, s[i:i+n]...)
			i += n
			continue
		}
		i++
	}
	return dst
}

// absorb ends the way of f, a client message recorded as absorbed: its
// buffer is released, or reused for the edge's answer (d.ans), which is
// recorded (origin EDGE) and written to the client in order with the
// upstream's messages.
func (d *dir) absorb(f *msgBuf) (*cause, bool) {
	p := d.p
	if len(d.ans) == 0 {
		p.e.bufs.put(f)
		return nil, true
	}
	f.b.Reset()
	if len(d.ans) > f.b.Available() {
		// Never met: the answer (under 2 KiB) is smaller than the
		// request's buffer (4 KiB at least). Keep the budget exact anyway.
		d.ans = append(d.ans[:0], `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"answer too large"}}`...)
	}
	f.b.Write(d.ans)
	f.typ = websocket.MessageText
	payload := f.b.Bytes()
	m := &d.ansMsg
	m.Reset()
	m.Direction, m.Origin = event.Direction_UPSTREAM_TO_CLIENT, event.Origin_EDGE
	m.WireSize, m.PayloadSize = uint64(len(payload)), uint64(len(payload))
	// Classified as the client will read it; this also forgets an
	// eth_subscribe the answer ends.
	if err := d.cls.classify(m, payload, &p.pending); err != nil {
		p.e.bufs.put(f)
		return &recorderFailedCause, false
	}
	m.Payload, d.ansSum = record.Payload(p.capture, payload)
	m.PayloadSha256 = d.ansSum[:]
	return p.toClient.inject(f, m)
}

// inject records m, a message the edge writes itself in d's direction,
// and forwards f, its payload, to d's destination in seq order with the
// direction's other messages: the same recorded, ordered path.
func (d *dir) inject(f *msgBuf, m *event.Message) (*cause, bool) {
	d.order.Lock()
	defer d.order.Unlock()
	seq, err := d.p.stream.Append(d.p.ctx, m)
	if err != nil {
		d.p.e.bufs.put(f)
		if d.p.ending.Load() {
			return nil, false
		}
		d.p.e.log.Error("ws: record", "stream", d.p.stream.ID(), "err", err)
		return &recorderFailedCause, false
	}
	f.seq = seq
	if d.q != nil {
		return d.enqueue(f)
	}
	return d.writeNow(f)
}
