package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Quarantined is a quarantine row: a record the meter could not meter,
// kept whole with why, so that nothing read from Kafka is lost even when
// it cannot be counted.
type Quarantined struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   []Header
	Time      time.Time // the record's timestamp
	Error     string
	// QuarantinedAt is set by Postgres.
	QuarantinedAt time.Time
}

// Header is a Kafka record header.
type Header struct {
	Key   string `json:"key"`
	Value []byte `json:"value"` // base64 in JSON
}

// insertQuarantined stores records set aside; one already stored (the
// same offset set aside again after a crash) stays as first stored.
func insertQuarantined(ctx context.Context, tx pgx.Tx, rows []Quarantined) error {
	for _, q := range rows {
		headers, err := json.Marshal(q.Headers)
		if err != nil || q.Headers == nil {
			headers = []byte("[]")
		}
		if _, err := tx.Exec(ctx, `INSERT INTO quarantine (topic, kafka_partition, kafka_offset, record_key,
				record_value, record_headers, record_time, error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT DO NOTHING`,
			q.Topic, q.Partition, q.Offset, q.Key, q.Value, string(headers), q.Time, safeText(q.Error)); err != nil {
			return fmt.Errorf("ledger: quarantine %s/%d@%d: %w", q.Topic, q.Partition, q.Offset, err)
		}
	}
	return nil
}

const quarantineCursor = "quarantine"

// Cursor returns the record's cursor in ListQuarantine.
func (q Quarantined) Cursor() string {
	return encodeCursor(quarantineCursor, q.Topic+"\x00"+strconv.Itoa(int(q.Partition))+"\x00"+strconv.FormatInt(q.Offset, 10))
}

// ListQuarantine returns up to first quarantined records, by topic,
// partition and offset, starting after the record whose cursor is after
// ("" for the first page).
func (s *Store) ListQuarantine(ctx context.Context, first int, after string) (Page[Quarantined], error) {
	if err := checkPageSize(first); err != nil {
		return Page[Quarantined]{}, err
	}
	key, err := decodeCursor(quarantineCursor, after)
	if err != nil {
		return Page[Quarantined]{}, err
	}
	var w sqlWhere
	if key != "" {
		parts := strings.Split(key, "\x00")
		var part, off int64
		var err1, err2 error
		if len(parts) == 3 {
			part, err1 = strconv.ParseInt(parts[1], 10, 32)
			off, err2 = strconv.ParseInt(parts[2], 10, 64)
		}
		if len(parts) != 3 || err1 != nil || err2 != nil {
			return Page[Quarantined]{}, &InvalidInputError{Field: "after", Reason: "not a cursor of this list"}
		}
		w.add("(topic, kafka_partition, kafka_offset) > (?, ?, ?)", parts[0], int32(part), off)
	}
	q := `SELECT topic, kafka_partition, kafka_offset, record_key, record_value, record_headers, record_time, error,
		quarantined_at FROM quarantine` + w.sql() + " ORDER BY topic, kafka_partition, kafka_offset LIMIT " + w.param(first+1)
	return listPage(ctx, s, "quarantine", q, w.args, first, func(row pgx.CollectableRow) (Quarantined, error) {
		var r Quarantined
		var headers []byte
		err := row.Scan(&r.Topic, &r.Partition, &r.Offset, &r.Key, &r.Value, &headers, &r.Time, &r.Error, &r.QuarantinedAt)
		if err == nil {
			err = json.Unmarshal(headers, &r.Headers)
		}
		return r, err
	})
}
