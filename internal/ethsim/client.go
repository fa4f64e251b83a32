package ethsim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/coder/websocket"
)

// Client is a minimal JSON-RPC over WebSocket client: pipelined calls and
// subscriptions, as the demo and the load generator need them.
type Client struct {
	ws *websocket.Conn

	wmu sync.Mutex
	mu  sync.Mutex
	id  uint64
	out map[string]chan reply
	sub map[string]chan json.RawMessage
	// subscribing holds the notification channel of each eth_subscribe
	// call awaiting its response, by call id: the read loop files it under
	// the subscription id before it reads the next frame, which may be the
	// subscription's first notification.
	subscribing map[string]chan json.RawMessage
	err         error

	done chan struct{}
}

type reply struct {
	result json.RawMessage
	err    error
}

// RPCError is a JSON-RPC error object returned by the server.
type RPCError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *RPCError) Error() string { return fmt.Sprintf("json-rpc error %d: %s", e.Code, e.Message) }

// Dial connects to a JSON-RPC WebSocket endpoint.
func Dial(ctx context.Context, url string) (*Client, error) {
	ws, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		return nil, fmt.Errorf("ethsim: dial %s: %w", url, err)
	}
	ws.SetReadLimit(1 << 20)
	c := &Client{ws: ws, out: map[string]chan reply{}, sub: map[string]chan json.RawMessage{},
		subscribing: map[string]chan json.RawMessage{}, done: make(chan struct{})}
	go c.read()
	return c, nil
}

// Close closes the connection normally.
func (c *Client) Close() error {
	err := c.ws.Close(websocket.StatusNormalClosure, "")
	<-c.done
	return err
}

// Call sends a request and waits for its response.
func (c *Client) Call(ctx context.Context, method string, params ...any) (json.RawMessage, error) {
	return c.call(ctx, nil, method, params...)
}

// call is Call; a non-nil sub receives the notifications of the
// subscription the response names.
func (c *Client) call(ctx context.Context, sub chan json.RawMessage, method string, params ...any) (json.RawMessage, error) {
	if params == nil {
		params = []any{}
	}
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return nil, err
	}
	c.id++
	n := c.id
	id := strconv.FormatUint(n, 10)
	ch := make(chan reply, 1)
	c.out[id] = ch
	if sub != nil {
		c.subscribing[id] = sub
	}
	c.mu.Unlock()
	req, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": n, "method": method, "params": params})
	if err != nil {
		return nil, err
	}
	if err := c.write(ctx, req); err != nil {
		return nil, err
	}
	select {
	case r := <-ch:
		return r.result, r.err
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.out, id)
		delete(c.subscribing, id)
		c.mu.Unlock()
		return nil, ctx.Err()
	}
}

// Subscribe calls eth_subscribe and returns the subscription id and a
// channel of notification results (buffered; a slow reader loses none but
// stalls the connection).
func (c *Client) Subscribe(ctx context.Context, params ...any) (string, <-chan json.RawMessage, error) {
	ch := make(chan json.RawMessage, 256)
	res, err := c.call(ctx, ch, "eth_subscribe", params...)
	if err != nil {
		return "", nil, err
	}
	var id string
	if err := json.Unmarshal(res, &id); err != nil {
		return "", nil, fmt.Errorf("ethsim: subscription id: %w", err)
	}
	return id, ch, nil
}

func (c *Client) write(ctx context.Context, b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.ws.Write(ctx, websocket.MessageText, b)
}

func (c *Client) read() {
	defer close(c.done)
	for {
		_, data, err := c.ws.Read(context.Background())
		if err != nil {
			c.fail(err)
			return
		}
		var msg struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Result json.RawMessage `json:"result"`
			Error  *RPCError       `json:"error"`
			Params struct {
				Subscription string          `json:"subscription"`
				Result       json.RawMessage `json:"result"`
			} `json:"params"`
		}
		if json.Unmarshal(data, &msg) != nil {
			continue
		}
		c.mu.Lock()
		if msg.Method == "eth_subscription" {
			ch := c.sub[msg.Params.Subscription]
			c.mu.Unlock()
			if ch != nil {
				ch <- msg.Params.Result
			}
			continue
		}
		ch := c.out[string(msg.ID)]
		delete(c.out, string(msg.ID))
		if sub := c.subscribing[string(msg.ID)]; sub != nil {
			delete(c.subscribing, string(msg.ID))
			var sid string
			if msg.Error == nil && json.Unmarshal(msg.Result, &sid) == nil {
				c.sub[sid] = sub
			}
		}
		c.mu.Unlock()
		if ch != nil {
			r := reply{result: msg.Result}
			if msg.Error != nil {
				r.err = msg.Error
			}
			ch <- r
		}
	}
}

func (c *Client) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = errors.Join(errors.New("ethsim: connection closed"), err)
	}
	for id, ch := range c.out {
		ch <- reply{err: c.err}
		delete(c.out, id)
	}
	for id, ch := range c.sub {
		close(ch)
		delete(c.sub, id)
	}
	for id := range c.subscribing {
		delete(c.subscribing, id) // the caller gets the error, not the channel
	}
}
