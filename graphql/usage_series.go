package graphql

import (
	"context"
	"fmt"

	"github.com/relaymeter/relaymeter/ledger"
)

// DefaultMaxUsageRows is the default of Config.MaxUsageRows.
const DefaultMaxUsageRows = 10_000

// usageSeriesArgs are usageSeries' arguments.
type usageSeriesArgs struct {
	Filter   *usageFilterInput
	GroupBy  *[]string
	Window   *string
	TimeZone *string
	First    *int32
}

// UsageSeries answers usageSeries: the usage args.Filter selects within
// the caller's scope, by window and by the dimensions of args.GroupBy.
func (r *resolver) UsageSeries(ctx context.Context, args usageSeriesArgs) (*usageSeriesResolver, error) {
	limit := r.maxRows
	if args.First != nil {
		if *args.First < 1 || int(*args.First) > r.maxRows {
			return nil, badInput(fmt.Sprintf("invalid first: must be between 1 and %d, got %d", r.maxRows, *args.First))
		}
		limit = int(*args.First)
	}
	q := ledger.UsageSeriesQuery{Filter: usageFilter(ctx, args.Filter), TimeZone: str(args.TimeZone), Limit: limit}
	if args.Window != nil {
		q.Window = ledger.Window(*args.Window)
	}
	if args.GroupBy != nil {
		for _, g := range *args.GroupBy {
			q.GroupBy = append(q.GroupBy, ledger.UsageGroup(g))
		}
	}
	rows, err := r.store.UsageSeries(ctx, q)
	if err != nil {
		return nil, fail(ctx, r.log, "usage series", err)
	}
	zone := q.TimeZone
	if zone == "" {
		zone = "UTC"
	}
	grouped := map[ledger.UsageGroup]bool{}
	for _, g := range q.GroupBy {
		grouped[g] = true
	}
	out := &usageSeriesResolver{zone: zone, window: args.Window, groupBy: q.GroupBy, rows: make([]*usageRowResolver, len(rows))}
	for i, row := range rows {
		out.rows[i] = &usageRowResolver{row: row, windowed: q.Window != ledger.WindowNone, grouped: grouped}
	}
	return out, nil
}

type usageSeriesResolver struct {
	zone    string
	window  *string
	groupBy []ledger.UsageGroup
	rows    []*usageRowResolver
}

func (s *usageSeriesResolver) Rows() []*usageRowResolver { return s.rows }
func (s *usageSeriesResolver) TimeZone() string          { return s.zone }
func (s *usageSeriesResolver) Window() *string           { return s.window }
func (s *usageSeriesResolver) GroupBy() []string {
	out := make([]string, len(s.groupBy))
	for i, g := range s.groupBy {
		out[i] = string(g)
	}
	return out
}

type usageRowResolver struct {
	row      ledger.UsageRow
	windowed bool
	grouped  map[ledger.UsageGroup]bool
}

func (u *usageRowResolver) Window() *Time {
	if !u.windowed {
		return nil
	}
	return &Time{u.row.Window}
}

// group is v when g is grouped by, else null.
func (u *usageRowResolver) group(g ledger.UsageGroup, v string) *string {
	if !u.grouped[g] {
		return nil
	}
	return &v
}

func (u *usageRowResolver) Service() *string { return u.group(ledger.GroupService, u.row.Service) }
func (u *usageRowResolver) Application() *string {
	return u.group(ledger.GroupApplication, u.row.Application)
}
func (u *usageRowResolver) Supplier() *string { return u.group(ledger.GroupSupplier, u.row.Supplier) }
func (u *usageRowResolver) Protocol() *string { return u.group(ledger.GroupProtocol, u.row.Protocol) }
func (u *usageRowResolver) Method() *string   { return u.group(ledger.GroupMethod, u.row.Method) }
func (u *usageRowResolver) Messages() Long    { return Long(u.row.Messages) }
func (u *usageRowResolver) Relays() Long      { return Long(u.row.Relays) }
func (u *usageRowResolver) Units() Long       { return Long(u.row.Units) }
func (u *usageRowResolver) Bytes() Long       { return Long(u.row.Bytes) }

// Amount is what the row's usage costs, per currency.
func (u *usageRowResolver) Amount() []*amountResolver {
	out := make([]*amountResolver, len(u.row.Amounts))
	for i, a := range u.row.Amounts {
		out[i] = &amountResolver{a}
	}
	return out
}
