package beam

import (
	"crypto/sha256"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the edge's Prometheus metrics.
type metrics struct {
	conns, dialErrors, idle    prometheus.Counter
	active                     prometheus.Gauge
	refused, handshakeFailures *prometheus.CounterVec
	lines, bytes, tooLong      *prometheus.CounterVec
}

func (m *metrics) register(reg prometheus.Registerer) error {
	opts := func(name, help string) prometheus.CounterOpts {
		return prometheus.CounterOpts{Namespace: "relaymeter", Subsystem: "beam_edge", Name: name, Help: help}
	}
	m.conns = prometheus.NewCounter(opts("connections_total", "Miner connections proxied to the node."))
	m.dialErrors = prometheus.NewCounter(opts("upstream_dial_errors_total", "Failed dials of the node."))
	m.idle = prometheus.NewCounter(opts("idle_closes_total", "Connections closed for inactivity."))
	m.active = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "relaymeter", Subsystem: "beam_edge", Name: "connections_active", Help: "Miner connections open."})
	m.refused = prometheus.NewCounterVec(opts("refused_total", "Miner connections ended before the node was dialled, by reason."), []string{"reason"})
	m.handshakeFailures = prometheus.NewCounterVec(opts("handshake_failures_total", "Failed TLS handshakes, by side."), []string{"side"})
	m.lines = prometheus.NewCounterVec(opts("lines_total", "Lines forwarded, by sender (miner, node)."), []string{"from"})
	m.bytes = prometheus.NewCounterVec(opts("bytes_total", "Bytes of lines forwarded, LF included, by sender."), []string{"from"})
	m.tooLong = prometheus.NewCounterVec(opts("lines_too_long_total", "Connections dropped for a line over the limit, by sender."), []string{"from"})
	if reg == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{m.conns, m.dialErrors, m.idle, m.active, m.refused, m.handshakeFailures, m.lines, m.bytes, m.tooLong} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("beam: register metrics: %w", err)
		}
	}
	return nil
}

// sha256Line is the sha256 of line as it crossed, its LF included unless
// unterminated.
func sha256Line(line []byte, unterminated bool) [sha256.Size]byte {
	h := sha256.New()
	h.Write(line)
	if !unterminated {
		h.Write([]byte{'\n'})
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}
