package graphql

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Time is the schema's Time scalar: an instant as an RFC 3339 string.
type Time struct{ time.Time }

// ImplementsGraphQLType reports whether Time implements the named scalar.
func (Time) ImplementsGraphQLType(name string) bool { return name == "Time" }

// UnmarshalGraphQL parses an RFC 3339 string.
func (t *Time) UnmarshalGraphQL(input any) error {
	s, ok := input.(string)
	if !ok {
		return fmt.Errorf("invalid Time: want an RFC 3339 string, got %T", input)
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("invalid Time %q: want RFC 3339, e.g. 2026-01-02T15:04:05Z", s)
	}
	t.Time = v
	return nil
}

// MarshalJSON writes the instant in UTC as an RFC 3339 string.
func (t Time) MarshalJSON() ([]byte, error) {
	return json.Marshal(t.UTC().Format(time.RFC3339Nano))
}

// Long is the schema's Long scalar: a signed 64-bit integer, written as a
// JSON number.
type Long int64

// ImplementsGraphQLType reports whether Long implements the named scalar.
func (Long) ImplementsGraphQLType(name string) bool { return name == "Long" }

// UnmarshalGraphQL accepts an integral number or a decimal string.
func (l *Long) UnmarshalGraphQL(input any) error {
	switch v := input.(type) {
	case int32:
		*l = Long(v)
	case int64:
		*l = Long(v)
	case int:
		*l = Long(v)
	case float64:
		if v != math.Trunc(v) || v < math.MinInt64 || v >= math.MaxInt64 {
			return fmt.Errorf("invalid Long %v: not a 64-bit integer", v)
		}
		*l = Long(v)
	case string:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("invalid Long %q: not a 64-bit integer", v)
		}
		*l = Long(n)
	default:
		return fmt.Errorf("invalid Long: got %T", input)
	}
	return nil
}

// MarshalJSON writes the integer as a JSON number.
func (l Long) MarshalJSON() ([]byte, error) { return strconv.AppendInt(nil, int64(l), 10), nil }

// optLong converts a nullable int64.
func optLong(v sql.Null[int64]) *Long {
	if !v.Valid {
		return nil
	}
	l := Long(v.V)
	return &l
}

// optTime converts a nullable time.
func optTime(v sql.Null[time.Time]) *Time {
	if !v.Valid {
		return nil
	}
	return &Time{v.V}
}

// opt converts a nullable value to GraphQL's nullable form.
func opt[T any](v sql.Null[T]) *T {
	if !v.Valid {
		return nil
	}
	return &v.V
}
