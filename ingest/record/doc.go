// Package record is the edges' recorder: it gives every stream gapless
// sequence numbers and a hash chain, and makes its events durable in Kafka,
// keyed by stream id, in order.
//
// # Partitions and group commit
//
// A stream is pinned at Open to one partition of the topic: FNV-1a of its
// id modulo the partition count known then (as kafka-go's Hash balancer
// places a key). It keeps that partition for its life, even when partitions
// are added (the count is refreshed every Config.MetadataRefresh, and
// sooner after errors), because the meter owns a stream's state per
// partition. The partition travels with each event, into the spool too.
//
// Each partition has a queue and a sender goroutine with at most one
// produce request in flight. An idle sender sends the first event at once;
// the events queued while a produce is in flight form the next batch, sent
// the moment the previous one is acknowledged, so batches grow with load
// by themselves and an idle edge adds one produce round trip, not a linger
// (Config.BatchLinger opts into one). Partitions are in flight
// concurrently. Produces go through kafka-go's Client with an explicit
// partition, which its transport routes to the leader; acks are from all
// in-sync replicas.
//
// # Durability and the spool
//
// An event is durable once Kafka acknowledged it, or once it is appended to
// the local spool (Config.SpoolDir) and fdatasynced; Stream.WaitDurable
// waits for that. When a produce fails, or is not acknowledged within
// Config.SpoolAfter, its batch goes to the spool, and from then on every
// sender appends its batches there, behind it, so a stream's events stay
// in order; a produce that lands after all only makes a duplicate, which
// the meter drops by (stream, seq). One writer goroutine group-commits the
// spool: one write and one fdatasync per group, and what senders hand it
// during an fsync forms the next group (a sender does not wait for its
// batch's fsync to append the next: the log's order is the append order).
// A drainer produces the spool to Kafka in order (each chunk's partitions
// concurrently, each partition's records in order) and deletes each
// segment once Kafka has all of it. When it has caught up with everything
// synced, new batches wait for the groups still being written to drain,
// and then the senders go back to producing directly. A crash mid-drain
// resends part of a segment: duplicates again.
//
// The spool is segment files of length-prefixed, CRC-32C-checked records
// (see segment.go). At New the directory is locked (flock on its LOCK
// file; a second recorder gets ErrSpoolLocked), the segments are scanned,
// a torn or corrupt tail is truncated with a warning naming the file, the
// offset and the bytes cut (events in it were never reported durable),
// and the drainer sends what is left before or alongside new events: those
// belong to streams of the earlier process, which get no new events.
//
// The spool is capped (Config.SpoolMaxBytes): beyond it senders wait for
// the drainer to free room, their queues fill, and Append blocks:
// back-pressure, never loss. Without a spool a failed produce is retried
// with backoff until it succeeds, with the same back-pressure.
//
// # Memory
//
// Events recorded and not yet durable are bounded by Config.BufferEvents
// and Config.BufferBytes; beyond them Append blocks until there is room or
// its context ends. An event is never dropped.
//
// # Errors retrying cannot fix
//
// A batch Kafka refuses with a per-record error (MESSAGE_TOO_LARGE,
// INVALID_RECORD, CORRUPT_MESSAGE, RECORD_LIST_TOO_LARGE) is split and
// retried in halves; an event refused on its own is rejected: counted
// (events_rejected_total), logged with its stream, seq, size and the
// Kafka error, and its stream's WaitDurable from that seq on returns an
// error wrapping ErrRejected. The other events and streams go on.
// Re-sealing the event smaller would change its chain and break every
// later event of the stream, so the recorder does not; an edge avoids the
// refusal instead by re-appending without the captured payload when
// Append returns ErrEventTooLarge, which it does for any event larger than
// the topic's max.message.bytes (learnt at New) admits. Everything else
// (broker down, not leader, timeouts, authorization) is retried or
// spooled.
package record
