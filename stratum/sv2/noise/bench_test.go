package noise

import (
	"bytes"
	"fmt"
	"io"
	"testing"
)

var benchSizes = []int{100, 64 << 10}

func BenchmarkEncryptFrame(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			f := frame(0, 0x1b, pattern(size, 1))
			var cs cipherState
			cs.initializeKey(fuzzKey)
			dst := make([]byte, 0, WireSize(size))
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if dst, err = encryptFrame(dst[:0], &cs, f[:HeaderSize], f[HeaderSize:]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecryptFrame(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			f := frame(0, 0x1b, pattern(size, 1))
			var enc cipherState
			enc.initializeKey(fuzzKey)
			wire, _ := encryptFrame(nil, &enc, f[:HeaderSize], f[HeaderSize:])
			var dec cipherState
			dec.initializeKey(fuzzKey)
			src := bytes.NewReader(wire)
			fr := newFrameReader(src, dec, MaxPayloadLimit)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				src.Reset(wire)
				fr.cs.n = 0 // replay the same ciphertext
				got, err := fr.next()
				if err != nil || len(got) != len(f) {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkConnThroughput measures encrypted frames one way over TCP on
// 127.0.0.1, Write on the client and ReadFrame on the server.
func BenchmarkConnThroughput(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			id := newTestIdentity(b)
			c, s := connectedPair(b, id, id.clientConfig(), id.serverConfig(), nil, nil)
			f := frame(0, 0x1b, pattern(size, 1))
			done := make(chan error, 1)
			go func() {
				for {
					if _, err := s.ReadFrame(); err != nil {
						if err == io.EOF {
							err = nil
						}
						done <- err
						return
					}
				}
			}()
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Write(f); err != nil {
					b.Fatal(err)
				}
			}
			c.Close()
			<-done
		})
	}
}

// BenchmarkHandshake is one complete handshake in memory: both sides'
// key generation, four v2_ecdh, the certificate check.
func BenchmarkHandshake(b *testing.B) {
	id := newTestIdentity(b)
	authority := id.authority.PublicKey()
	now := nowFor(id.cert)
	b.ReportAllocs()
	for b.Loop() {
		ini, err := newInitiatorHandshake()
		if err != nil {
			b.Fatal(err)
		}
		resp, err := newResponderHandshake(id.static, id.cert)
		if err != nil {
			b.Fatal(err)
		}
		act1 := ini.writeAct1()
		if err := resp.readAct1(act1[:]); err != nil {
			b.Fatal(err)
		}
		act2, _, err := resp.writeAct2()
		if err != nil {
			b.Fatal(err)
		}
		res, err := ini.readAct2(act2[:])
		if err != nil {
			b.Fatal(err)
		}
		if err := res.certificate.Verify(authority, res.serverKey, now, DefaultClockSkew); err != nil {
			b.Fatal(err)
		}
	}
}
