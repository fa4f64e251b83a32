package ledger

// Placeholders until the core's functions are merged (branch settle).

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"

	"golang.org/x/crypto/sha3"
)

func sessionIDOf(hash []byte, service, application string, start int64) string {
	var le [8]byte
	binary.LittleEndian.PutUint64(le[:], uint64(start))
	h := sha3.Sum256([]byte(string(hash) + "." + service + "." + application + "." + string(le[:])))
	return hex.EncodeToString(h[:])
}

func settlementUnitID(sessionID, supplier string) string {
	h := sha256.Sum256([]byte(sessionID + "\x00" + supplier))
	return hex.EncodeToString(h[:])
}
