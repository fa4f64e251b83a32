// Package noise implements the Stratum V2 Noise layer (chapter 04 of the
// Stratum V2 specification): the Noise_NX_Secp256k1+EllSwift_ChaChaPoly_SHA256
// handshake, the responder's certificate (SIGNATURE_NOISE_MESSAGE) signed by
// an authority key, the base58check text form of authority keys, and the
// encrypted transport that carries Sv2 frames.
//
// Most callers use [Client] or [Server], which wrap a net.Conn in a [*Conn]
// whose plaintext stream is a sequence of whole Sv2 frames (6-byte header
// followed by msg_length payload bytes), so an Sv2 frame reader can sit on
// top of it unchanged.
//
// Wire facts, as peers (the reference implementation) use them:
//   - act 1 (initiator → responder, "-> e") is 64 bytes: an ElligatorSwift
//     encoded ephemeral key;
//   - act 2 (responder → initiator, "<- e, ee, s, es, SIGNATURE_NOISE_MESSAGE")
//     is 234 bytes: 64 + (64+16) + (74+16);
//   - ECDH is BIP324's v2_ecdh, so its result depends on the role;
//   - after the handshake, (k1, k2) = HKDF(ck, ""), k1 encrypts initiator →
//     responder and k2 the other way; the AEAD nonce is 4 zero bytes followed
//     by a little-endian 64-bit counter;
//   - each frame's header is encrypted alone (22 bytes on the wire), then the
//     payload follows in chunks of at most 65519 plaintext bytes, each with
//     its own 16-byte MAC: [WireSize] gives the total.
//
// Act 1 carries no authentication of its own: a corrupted act 1 is detected
// by the initiator when act 2 fails to decrypt, because both sides hash every
// handshake byte into the keys.
package noise
