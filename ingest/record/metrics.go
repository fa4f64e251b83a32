package record

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the recorder's own collectors; the counters are read from
// the same atomics as Stats, so the hot path pays nothing extra.
type metrics struct {
	produceSeconds prometheus.Histogram
}

func newMetrics() metrics {
	return metrics{produceSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "relaymeter", Subsystem: "recorder", Name: "produce_seconds",
		Help:    "Produce request round trips, from send to answer (or timeout).",
		Buckets: prometheus.ExponentialBuckets(50e-6, 2, 16),
	})}
}

// register exposes the recorder's metrics on reg.
func (r *Recorder) register(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	counter := func(name, help string, f func() uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "relaymeter", Subsystem: "recorder", Name: name, Help: help},
			func() float64 { return float64(f()) })
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "relaymeter", Subsystem: "recorder", Name: name, Help: help}, f)
	}
	stat := func(f func(Stats) float64) func() float64 { return func() float64 { return f(r.Stats()) } }
	cs := []prometheus.Collector{
		r.m.produceSeconds,
		counter("events_recorded_total", "Events accepted.", r.recorded.Load),
		counter("events_written_total", "Events acknowledged by Kafka when first produced.", r.written.Load),
		counter("events_retried_total", "Event writes attempted again after a failure.", r.retried.Load),
		counter("events_failed_total", "Events not durable by the shutdown deadline.", r.failed.Load),
		counter("events_rejected_total", "Events Kafka refused for good (too large, invalid); each is logged.", r.rejected.Load),
		counter("batches_total", "Produce requests.", r.batches.Load),
		counter("write_errors_total", "Failed produce requests.", r.writeErrors.Load),
		gauge("events_buffered", "Events recorded and not yet durable.", func() float64 { return float64(r.buffered.Load()) }),
		gauge("streams_open", "Streams opened and not yet closed.", func() float64 { return float64(r.streamsOpen.Load()) }),
		gauge("partitions", "Partitions new streams are spread over.", func() float64 { return float64(r.nparts.Load()) }),
	}
	if s := r.spool; s != nil {
		cs = append(cs,
			counter("events_spooled_total", "Events written to the local spool and fsynced.", s.spooled.Load),
			counter("events_drained_total", "Spooled events acknowledged by Kafka.", s.drained.Load),
			counter("spool_syncs_total", "Spool group commits (one write and one fdatasync each).", s.fsyncs.Load),
			gauge("spool_bytes", "Size of the spool's segment files.", stat(func(st Stats) float64 { return float64(st.SpoolBytes) })),
			gauge("spooling", "1 while new events go to the spool (Kafka failing or the spool not yet drained), else 0.",
				stat(func(st Stats) float64 {
					if st.Spooling {
						return 1
					}
					return 0
				})),
			gauge("spool_max_bytes", "The spool's size cap; beyond it the edge applies back-pressure.", func() float64 { return float64(s.max) }),
		)
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("record: register metrics: %w", err)
		}
	}
	return nil
}
