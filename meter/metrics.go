package meter

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the meter's Prometheus collectors.
type metrics struct {
	events, duplicates, relays, batches prometheus.Counter
	failures, fenced, conflicts         prometheus.Counter
	narrowed, quarantined, abandoned    prometheus.Counter
	settled, settleFailures             prometheus.Counter
	inMemory                            prometheus.Gauge
	findings                            *prometheus.CounterVec
	batchTime                           prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "relaymeter", Subsystem: "meter", Name: name, Help: help})
	}
	m := &metrics{
		events:         counter("events_total", "Records committed to the ledger, duplicates and quarantined ones included."),
		duplicates:     counter("duplicates_total", "Duplicate events (a stream's seq already metered) dropped."),
		relays:         counter("relays_total", "Relays metered."),
		batches:        counter("batches_total", "Batches committed."),
		failures:       counter("batch_failures_total", "Batches that failed (Postgres or Kafka unreachable) and were retried from the stored offset."),
		fenced:         counter("fenced_total", "Batches fenced by another consumer's offset, or by a commit whose answer was lost; the partition resumed from the stored offset."),
		conflicts:      counter("stream_conflicts_total", "Batches that found a stream written by another meter; the partition read its streams again."),
		narrowed:       counter("batches_narrowed_total", "Batches Postgres refused, retried in halves to find the record at fault."),
		quarantined:    counter("quarantined_total", "Records set aside in the quarantine, unmetered."),
		abandoned:      counter("streams_abandoned_total", "Streams closed by the meter after the idle timeout, their edge gone."),
		settled:        counter("windows_settled_total", "Session windows this meter settled."),
		settleFailures: counter("settle_failures_total", "Settlement attempts that failed (chain, Kafka or Postgres unreachable) and were retried."),
		inMemory: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "relaymeter", Subsystem: "meter",
			Name: "streams_in_memory", Help: "Streams whose state the meter holds: the open streams of its partitions."}),
		findings: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "relaymeter", Subsystem: "meter",
			Name: "findings_total", Help: "Findings recorded, by kind."}, []string{"kind"}),
		batchTime: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "relaymeter", Subsystem: "meter",
			Name: "batch_commit_seconds", Help: "Time to commit one batch to Postgres.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.events, m.duplicates, m.relays, m.batches, m.failures, m.fenced,
		m.conflicts, m.narrowed, m.quarantined, m.abandoned, m.settled, m.settleFailures, m.inMemory, m.findings, m.batchTime} {
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
