package subscriptions

import "bytes"

// A small JSON walker: it finds the fields the bookkeeping needs as raw
// values (subslices of the message) without decoding or validating the
// rest. Callers validate messages first (the WebSocket edge's scanner
// does); on invalid input the walker reports failure or finds nothing, and
// never panics, loops or allocates. Keys match byte for byte: "id",
// "method", "params", "result", "error", "subscription", "hash", as every
// node writes them (an escaped or differently cased key is not one).

// envelope is one JSON-RPC object's fields, nil when absent.
type envelope struct {
	id, method, params, result, err []byte
}

func (e *envelope) hasID() bool   { return len(e.id) > 0 && !isNull(e.id) }
func (e *envelope) isError() bool { return len(e.err) > 0 && !isNull(e.err) }

func isNull(raw []byte) bool { return string(raw) == "null" }

type walker struct {
	b []byte
	i int
}

func (w *walker) ws() {
	for w.i < len(w.b) {
		switch w.b[w.i] {
		case ' ', '\t', '\n', '\r':
			w.i++
		default:
			return
		}
	}
}

func (w *walker) peek() byte {
	w.ws()
	if w.i < len(w.b) {
		return w.b[w.i]
	}
	return 0
}

func (w *walker) eat(c byte) bool {
	if w.peek() == c {
		w.i++
		return true
	}
	return false
}

// str consumes a string token and returns it with its quotes.
func (w *walker) str() ([]byte, bool) {
	if w.peek() != '"' {
		return nil, false
	}
	start, i := w.i, w.i+1
	for {
		j := bytes.IndexByte(w.b[i:], '"')
		if j < 0 {
			w.i = len(w.b)
			return nil, false
		}
		i += j
		k := i - 1
		for k > start && w.b[k] == '\\' {
			k--
		}
		if (i-1-k)%2 == 0 { // not escaped: an even run of backslashes
			w.i = i + 1
			return w.b[start:w.i], true
		}
		i++
	}
}

// value consumes one value and returns it. Containers are skipped by
// counting brackets outside strings, which is exact for valid JSON.
func (w *walker) value() ([]byte, bool) {
	switch c := w.peek(); c {
	case 0:
		return nil, false
	case '"':
		return w.str()
	case '{', '[':
		start, depth := w.i, 0
		for w.i < len(w.b) {
			if !structural[w.b[w.i]] {
				w.i++
				continue
			}
			switch w.b[w.i] {
			case '"':
				if _, ok := w.str(); !ok {
					return nil, false
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					w.i++
					return w.b[start:w.i], true
				}
			}
			w.i++
		}
		return nil, false
	default:
		start := w.i
		for w.i < len(w.b) {
			switch w.b[w.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return w.b[start:w.i], w.i > start
			}
			w.i++
		}
		return w.b[start:w.i], w.i > start
	}
}

// object is an iterator over the fields of the object at a walker.
type object struct {
	w     *walker
	first bool
	ok    bool // the object so far is well formed
}

func (w *walker) object() object {
	return object{w: w, first: true, ok: w.eat('{')}
}

// next returns the next key (its raw token) and value; false at the end of
// the object or at a malformed one (then o.ok is false).
func (o *object) next() (key, val []byte, more bool) {
	w := o.w
	if !o.ok {
		return nil, nil, false
	}
	if w.eat('}') {
		return nil, nil, false
	}
	if !o.first && !w.eat(',') {
		o.ok = false
		return nil, nil, false
	}
	o.first = false
	k, ok := w.str()
	if !ok || !w.eat(':') {
		o.ok = false
		return nil, nil, false
	}
	v, ok := w.value()
	if !ok {
		o.ok = false
		return nil, nil, false
	}
	return k, v, true
}

// field is the value of key (a raw token with quotes) in object obj, the
// last one if repeated; nil if obj is not an object or has none.
func field(obj []byte, key string) []byte {
	var out []byte
	w := walker{b: obj}
	o := w.object()
	for k, v, more := o.next(); more; k, v, more = o.next() {
		if string(k) == key {
			out = v
		}
	}
	return out
}

// envelope reads the object at the walker into e.
func (w *walker) envelope(e *envelope) bool {
	*e = envelope{}
	o := w.object()
	for k, v, more := o.next(); more; k, v, more = o.next() {
		switch string(k) {
		case `"id"`:
			e.id = v
		case `"method"`:
			e.method = v
		case `"params"`:
			e.params = v
		case `"result"`:
			e.result = v
		case `"error"`:
			e.err = v
		}
	}
	return o.ok
}

// elements iterates over the JSON-RPC objects of a message: the object
// itself, or each object of a batch (other elements are skipped).
type elements struct {
	w     walker
	batch bool
	state uint8 // 0 not started, 1 in a batch, 2 done
}

func newElements(msg []byte) elements {
	it := elements{w: walker{b: msg}}
	it.batch = it.w.peek() == '['
	return it
}

// next reads the next object into e.
func (it *elements) next(e *envelope) bool {
	w := &it.w
	switch it.state {
	case 0:
		if !it.batch {
			it.state = 2
			return w.peek() == '{' && w.envelope(e)
		}
		w.i++
		it.state = 1
		if w.eat(']') {
			it.state = 2
			return false
		}
	case 2:
		return false
	default:
		if !w.eat(',') {
			it.state = 2
			return false
		}
	}
	for {
		if w.peek() == '{' {
			if !w.envelope(e) {
				it.state = 2
				return false
			}
			return true
		}
		if _, ok := w.value(); !ok || !w.eat(',') {
			it.state = 2
			return false
		}
	}
}

// firstParam is params[0], nil if params is not a non-empty array.
func firstParam(params []byte) []byte {
	w := walker{b: params}
	if !w.eat('[') || w.peek() == ']' {
		return nil
	}
	v, _ := w.value()
	return v
}

// offset is where sub, a subslice of msg, starts in msg, or -1.
func offset(msg, sub []byte) int {
	if len(sub) == 0 || cap(sub) > cap(msg) {
		return -1
	}
	off := cap(msg) - cap(sub)
	if off+len(sub) > len(msg) || &msg[off] != &sub[0] {
		return -1
	}
	return off
}

// splice replaces msg[at:at+n] with with, in place when msg's capacity
// allows (the message's buffer usually has room to spare), else in a new
// slice.
func splice(msg []byte, at, n int, with string) []byte {
	grow := len(with) - n
	switch {
	case grow <= 0:
		copy(msg[at:], with)
		copy(msg[at+len(with):], msg[at+n:])
		return msg[:len(msg)+grow]
	case len(msg)+grow <= cap(msg):
		old := len(msg)
		msg = msg[:old+grow]
		copy(msg[at+len(with):], msg[at+n:old])
		copy(msg[at:], with)
		return msg
	}
	out := make([]byte, 0, len(msg)+grow)
	out = append(out, msg[:at]...)
	out = append(out, with...)
	return append(out, msg[at+n:]...)
}

// structural marks the bytes that matter when skipping a container.
var structural = [256]bool{'"': true, '{': true, '}': true, '[': true, ']': true}

// validID reports whether id is an id the bookkeeping can echo in an
// answer of its own: a JSON string or number, as JSON-RPC wants. A request
// with another id is forwarded untracked (nodes answer it -32600).
func validID(id []byte) bool {
	if len(id) == 0 {
		return false
	}
	if id[0] == '"' {
		return validString(id)
	}
	if id[0] != '-' && (id[0] < '0' || id[0] > '9') {
		return false
	}
	for _, c := range id {
		if (c < '0' || c > '9') && c != '-' && c != '+' && c != '.' && c != 'e' && c != 'E' {
			return false
		}
	}
	return true
}

// validString reports whether s, a token with its quotes, is a valid JSON
// string: no control characters, only JSON's escapes.
func validString(s []byte) bool {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return false
	}
	for i := 1; i < len(s)-1; i++ {
		switch c := s[i]; {
		case c < 0x20 || c == '"':
			return false
		case c == '\\':
			i++
			if i >= len(s)-1 {
				return false
			}
			switch s[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(s)-1 {
					return false
				}
				for _, h := range s[i+1 : i+5] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return false
					}
				}
				i += 4
			default:
				return false
			}
		}
	}
	return true
}
