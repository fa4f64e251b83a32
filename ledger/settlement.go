package ledger

import (
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sort"
	"time"
)

// SettlementConfig is the settlement_config row: the chain source and the
// window parameters the ledger's sessions were cut with. It is stored at the
// first start and never changed.
type SettlementConfig struct {
	Source  string // "clock" or "cometbft"
	URL     string // cometbft: the RPC URL (not part of the identity)
	ChainID string // cometbft: the node's network
	// Genesis is the clock's genesis; not Valid for cometbft.
	Genesis sql.Null[time.Time]
	// BlockTime is the clock's block time; cometbft: the nominal one.
	BlockTime     time.Duration
	SessionBlocks int64
	GraceBlocks   int64
}

// ChainSession is a chain_sessions row: one session window of the chain,
// written once; EndsAt is set once, when the block after the window is
// known.
type ChainSession struct {
	StartHeight, EndHeight int64
	StartsAt               time.Time
	// EndsAt is the time of block EndHeight+1; not Valid while unknown.
	EndsAt    sql.Null[time.Time]
	StartHash []byte
}

// Session is a sessions row: the relays of one (application, service,
// supplier) in one settled window, and what they cost.
type Session struct {
	// ID is relaymeter's id of the settlement unit (session id, supplier):
	// SessionKey(SessionID, Supplier).
	ID string
	// SessionID is Pocket Network's session id of (application, service,
	// window): chain.SessionID.
	SessionID              string
	Application            string
	Service                string
	Supplier               string
	StartHeight, EndHeight int64
	Relays                 int64
	Units                  int64
	// Amount is units × the price in force at the window's start: what the
	// application pays, an exact decimal as text; "0" without a tariff.
	Amount string
	// Currency is the tariff's; "" without a tariff.
	Currency  string
	SettledAt time.Time
}

// Account kinds.
const (
	AccountApplication = "application"
	AccountSupplier    = "supplier"
	AccountFees        = "fees"
)

// Account is an accounts row: what one owner holds in one currency. Its
// balance is the sum of its entries.
type Account struct {
	ID       string // AccountID(Kind, Owner, Currency)
	Kind     string // AccountApplication, AccountSupplier or AccountFees
	Owner    string // the application, the supplier, or the service whose fees
	Currency string
}

// AccountID returns the id of the account of owner in currency:
// kind:owner:currency.
func AccountID(kind, owner, currency string) string { return kind + ":" + owner + ":" + currency }

// Transaction kinds.
const (
	KindSettlement = "settlement"
	KindAdjustment = "adjustment"
	KindReversal   = "reversal"
)

// Transaction is a ledger_transactions row with its entries.
type Transaction struct {
	// Seq numbers the ledger's transactions 1, 2, 3… without gaps.
	Seq int64
	// ID is TransactionID(session id, supplier, kind): one of each kind per
	// settlement unit, so that nothing is posted twice.
	ID   string
	Kind string
	// Session is the sessions row it settles (its ID).
	Session sql.Null[string]
	// Reverses is the transaction a reversal undoes.
	Reverses sql.Null[string]
	PostedAt time.Time
	// PrevHash is the Hash of transaction Seq-1 (32 zero bytes for the
	// first); Hash is TransactionHash of the transaction.
	PrevHash, Hash []byte
	Entries        []Entry
}

// Entry is a ledger_entries row: a debit (negative) or credit (positive)
// of an account, an exact decimal as text.
type Entry struct {
	Account string
	Amount  string
}

// SessionKey returns relaymeter's id of the settlement unit (session id,
// supplier): hex(sha256(session id ‖ 0x00 ‖ supplier)).
func SessionKey(sessionID, supplier string) string {
	h := sha256.New()
	h.Write([]byte(sessionID))
	h.Write([]byte{0})
	h.Write([]byte(supplier))
	return hex.EncodeToString(h.Sum(nil))
}

// TransactionID returns the id of the transaction of kind for the
// settlement unit (session id, supplier): hex(sha256(session id ‖ 0x00 ‖
// supplier ‖ 0x00 ‖ kind)).
func TransactionID(sessionID, supplier, kind string) string {
	h := sha256.New()
	h.Write([]byte(sessionID))
	h.Write([]byte{0})
	h.Write([]byte(supplier))
	h.Write([]byte{0})
	h.Write([]byte(kind))
	return hex.EncodeToString(h.Sum(nil))
}

// hashDomain starts every transaction's encoding.
const hashDomain = "relaymeter/ledger/v1"

// TransactionHash returns the hash of t chained to prev (t.PrevHash is not
// read): sha256(prev ‖ EncodeTransaction(t)).
func TransactionHash(prev []byte, t *Transaction) ([]byte, error) {
	enc, err := EncodeTransaction(t)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	h.Write(prev)
	h.Write(enc)
	return h.Sum(nil), nil
}

// EncodeTransaction returns the canonical encoding of t that its hash
// covers: "relaymeter/ledger/v1", seq (8 bytes), id, kind, session and
// reverses (a byte 0 for NULL, or 1 and the text), posted_at (unix
// microseconds, 8 bytes), the number of entries (4 bytes) and each entry
// sorted by account: account and amount as a canonical decimal (no
// exponent, no trailing fractional zeros, "-" for a debit). Integers are
// big-endian two's complement; each text is its length (4 bytes) and its
// UTF-8 bytes.
func EncodeTransaction(t *Transaction) ([]byte, error) {
	b := make([]byte, 0, 256)
	b = append(b, hashDomain...)
	b = binary.BigEndian.AppendUint64(b, uint64(t.Seq))
	b = appendText(b, t.ID)
	b = appendText(b, t.Kind)
	b = appendNullText(b, t.Session)
	b = appendNullText(b, t.Reverses)
	b = binary.BigEndian.AppendUint64(b, uint64(t.PostedAt.UnixMicro()))
	entries := append([]Entry(nil), t.Entries...)
	sort.Slice(entries, func(i, j int) bool { return entries[i].Account < entries[j].Account })
	b = binary.BigEndian.AppendUint32(b, uint32(len(entries)))
	for _, e := range entries {
		amount, err := CanonicalDecimal(e.Amount)
		if err != nil {
			return nil, fmt.Errorf("ledger: encode transaction %s: entry %s: %w", t.ID, e.Account, err)
		}
		b = appendText(b, e.Account)
		b = appendText(b, amount)
	}
	return b, nil
}

func appendText(b []byte, s string) []byte {
	return append(binary.BigEndian.AppendUint32(b, uint32(len(s))), s...)
}

func appendNullText(b []byte, s sql.Null[string]) []byte {
	if !s.Valid {
		return append(b, 0)
	}
	return appendText(append(b, 1), s.V)
}
