package record

import "crypto/sha256"

// MaxCapture is the most payload bytes an event carries, so that an event
// stays within Kafka's default 1 MiB record batch; payload_size and
// payload_sha256 still describe the whole payload.
const MaxCapture = 960 << 10

// Payload applies an edge's capture setting to payload: capture < 0 keeps
// the whole payload (up to MaxCapture bytes), 0 keeps none, N > 0 keeps the
// first N bytes. It returns the captured bytes (a subslice of payload, not a
// copy) and the sha256 of the whole payload.
func Payload(capture int64, payload []byte) (captured []byte, sum [sha256.Size]byte) {
	sum = sha256.Sum256(payload)
	n := int64(len(payload))
	if capture >= 0 && capture < n {
		n = capture
	}
	if n > MaxCapture {
		n = MaxCapture
	}
	if n == 0 {
		return nil, sum
	}
	return payload[:n], sum
}
