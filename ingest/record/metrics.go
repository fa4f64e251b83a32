package record

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// register exposes the recorder's counters on reg, reading the same atomics
// as Stats, so the hot path pays nothing extra.
func (r *Recorder) register(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	counter := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "relaymeter", Subsystem: "recorder", Name: name, Help: help}, f)
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "relaymeter", Subsystem: "recorder", Name: name, Help: help}, f)
	}
	cs := []prometheus.Collector{
		counter("events_recorded_total", "Events accepted into the recorder's buffer.", func() float64 { return float64(r.recorded.Load()) }),
		counter("events_written_total", "Events acknowledged by Kafka.", func() float64 { return float64(r.written.Load()) }),
		counter("events_retried_total", "Event writes attempted again after a failure.", func() float64 { return float64(r.retried.Load()) }),
		counter("events_failed_total", "Events not delivered by the shutdown deadline.", func() float64 { return float64(r.failed.Load()) }),
		counter("batches_total", "Produce calls.", func() float64 { return float64(r.batches.Load()) }),
		counter("events_spooled_total", "Events written to the local spool at shutdown.", func() float64 { return float64(r.spooled.Load()) }),
		counter("write_errors_total", "Failed produce calls.", func() float64 { return float64(r.writeErrors.Load()) }),
		gauge("events_buffered", "Events recorded and not yet acknowledged.", func() float64 { return float64(r.buffered.Load()) }),
		gauge("streams_open", "Streams opened and not yet closed.", func() float64 { return float64(r.streamsOpen.Load()) }),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("record: register metrics: %w", err)
		}
	}
	return nil
}
