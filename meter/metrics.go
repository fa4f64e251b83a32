package meter

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the meter's Prometheus collectors.
type metrics struct {
	events     prometheus.Counter
	duplicates prometheus.Counter
	relays     prometheus.Counter
	batches    prometheus.Counter
	failures   prometheus.Counter
	findings   *prometheus.CounterVec
	batchTime  prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		events: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "relaymeter", Subsystem: "meter",
			Name: "events_total", Help: "Records committed to the ledger, duplicates and undecodable ones included."}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "relaymeter", Subsystem: "meter",
			Name: "duplicates_total", Help: "Duplicate events (a stream's seq already metered) dropped."}),
		relays: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "relaymeter", Subsystem: "meter",
			Name: "relays_total", Help: "Relays written."}),
		batches: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "relaymeter", Subsystem: "meter",
			Name: "batches_total", Help: "Batches committed."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "relaymeter", Subsystem: "meter",
			Name: "batch_failures_total", Help: "Batches that failed and were retried from the stored offset."}),
		findings: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "relaymeter", Subsystem: "meter",
			Name: "findings_total", Help: "Findings recorded, by kind."}, []string{"kind"}),
		batchTime: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "relaymeter", Subsystem: "meter",
			Name: "batch_commit_seconds", Help: "Time to commit one batch to Postgres.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.events, m.duplicates, m.relays, m.batches, m.failures, m.findings, m.batchTime} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("meter: metrics: %w (one Meter per registry)", err)
			}
			return nil, fmt.Errorf("meter: metrics: %w", err)
		}
	}
	return m, nil
}
