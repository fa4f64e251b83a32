package ws

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the edge's Prometheus metrics.
type metrics struct {
	conns, rejected, dialErrors prometheus.Counter
	refused                     *prometheus.CounterVec
	active                      prometheus.Gauge
	messages                    *prometheus.CounterVec
	toUpstream, toClient        prometheus.Counter
	notReading                  *prometheus.CounterVec
	socketWrites                *prometheus.CounterVec
	overloaded                  prometheus.Counter
	limitedVec                  *prometheus.CounterVec
	limited                     [subscriptionsLimit + 1]prometheus.Counter // by verdict
	buffered                    prometheus.GaugeFunc
	failovers                   *prometheus.CounterVec
	duplicateHeads              prometheus.Counter
	failoverSeconds             prometheus.Histogram
}

func (m *metrics) register(reg prometheus.Registerer, buffered func() float64) error {
	opts := func(name, help string) prometheus.CounterOpts {
		return prometheus.CounterOpts{Namespace: "relaymeter", Subsystem: "ws_edge", Name: name, Help: help}
	}
	m.conns = prometheus.NewCounter(opts("connections_total", "Client connections proxied."))
	m.rejected = prometheus.NewCounter(opts("connections_rejected_total", "Client connections refused over MaxConnections."))
	m.refused = prometheus.NewCounterVec(opts("auth_refused_total", "Client connections refused before the upgrade for the credential they presented (or lack), by reason."), []string{"reason"})
	for _, r := range refusalReasons {
		m.refused.WithLabelValues(r)
	}
	m.dialErrors = prometheus.NewCounter(opts("upstream_dial_errors_total", "Failed upstream dials."))
	m.active = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "relaymeter", Subsystem: "ws_edge", Name: "connections_active", Help: "Client connections open."})
	m.messages = prometheus.NewCounterVec(opts("messages_total", "Messages forwarded, by direction."), []string{"direction"})
	m.toUpstream = m.messages.WithLabelValues("to_upstream")
	m.toClient = m.messages.WithLabelValues("to_client")
	m.notReading = prometheus.NewCounterVec(opts("not_reading_total", "Connections ended because a side did not take what the edge wrote (write timeout or queue over its bound), by side."), []string{"side"})
	m.socketWrites = prometheus.NewCounterVec(opts("socket_writes_total", "Writes to the connections of each side; fewer than messages forwarded when several were sent together."), []string{"side"})
	m.overloaded = prometheus.NewCounter(opts("overloaded_total", "Connections ended with 1013 because the edge's buffer budget stayed exhausted."))
	m.limitedVec = prometheus.NewCounterVec(opts("absorbed_total", "Client messages the edge recorded and answered itself instead of forwarding them, by the limit they went beyond (batch, method, rate, subscriptions)."), []string{"limit"})
	m.limited[batchTooLarge] = m.limitedVec.WithLabelValues("batch")
	m.limited[methodDenied] = m.limitedVec.WithLabelValues("method")
	m.limited[rateLimited] = m.limitedVec.WithLabelValues("rate")
	m.limited[subscriptionsLimit] = m.limitedVec.WithLabelValues("subscriptions")
	m.buffered = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "relaymeter", Subsystem: "ws_edge", Name: "buffer_bytes",
		Help: "Bytes of message buffers held against the edge's budget (BufferBytes): messages being read, queued or being written."}, buffered)
	m.failovers = prometheus.NewCounterVec(opts("failovers_total", "Clients whose upstream was lost, by result: moved to another upstream, or failed (no other upstream took them)."), []string{"result"})
	m.duplicateHeads = prometheus.NewCounter(opts("duplicate_heads_total", "newHeads notifications kept from clients after a move: the client had received the block already."))
	m.failoverSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "relaymeter", Subsystem: "ws_edge", Name: "failover_seconds",
		Help:    "From the loss of a client's upstream to the first notification the client gets from the next one.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)})
	if reg == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{m.conns, m.rejected, m.refused, m.dialErrors, m.active, m.messages, m.notReading, m.socketWrites, m.overloaded, m.limitedVec, m.buffered,
		m.failovers, m.duplicateHeads, m.failoverSeconds} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("ws: register metrics: %w", err)
		}
	}
	return nil
}
