package ws

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the edge's Prometheus metrics.
type metrics struct {
	conns, rejected, dialErrors prometheus.Counter
	active                      prometheus.Gauge
	messages                    *prometheus.CounterVec
	toUpstream, toClient        prometheus.Counter
}

func (m *metrics) register(reg prometheus.Registerer) error {
	opts := func(name, help string) prometheus.CounterOpts {
		return prometheus.CounterOpts{Namespace: "relaymeter", Subsystem: "ws_edge", Name: name, Help: help}
	}
	m.conns = prometheus.NewCounter(opts("connections_total", "Client connections proxied."))
	m.rejected = prometheus.NewCounter(opts("connections_rejected_total", "Client connections refused over MaxConnections."))
	m.dialErrors = prometheus.NewCounter(opts("upstream_dial_errors_total", "Failed upstream dials."))
	m.active = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "relaymeter", Subsystem: "ws_edge", Name: "connections_active", Help: "Client connections open."})
	m.messages = prometheus.NewCounterVec(opts("messages_total", "Messages forwarded, by direction."), []string{"direction"})
	m.toUpstream = m.messages.WithLabelValues("to_upstream")
	m.toClient = m.messages.WithLabelValues("to_client")
	if reg == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{m.conns, m.rejected, m.dialErrors, m.active, m.messages} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("ws: register metrics: %w", err)
		}
	}
	return nil
}
