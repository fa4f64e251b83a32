package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"

	"github.com/relaymeter/relaymeter/stratum/sv2"
)

func init() {
	register(command{name: "decode", summary: "decode Stratum V2 frames or Beam lines from stdin as JSON", run: runDecode})
}

// runDecode dispatches "decode sv2" and "decode beam".
func runDecode(ctx context.Context, args []string, sio stdio) error {
	if len(args) == 0 {
		fmt.Fprintln(sio.err, "usage: relaymeter decode sv2 [--raw] [--max-payload N] < frames")
		fmt.Fprintln(sio.err, "       relaymeter decode beam [flags] < lines")
		return errUsage
	}
	switch args[0] {
	case "sv2":
		return decodeSv2(ctx, args[1:], sio)
	case "beam":
		return decodeBeam(ctx, args[1:], sio)
	}
	fmt.Fprintf(sio.err, "relaymeter decode: unknown format %q (want sv2 or beam)\n", args[0])
	return errUsage
}

// decodeSv2 reads Stratum V2 frames from sio.in, as hex with one frame per
// line (whitespace ignored, lines starting with # skipped) or with --raw
// as bytes, and writes one JSON object per frame to sio.out.
func decodeSv2(ctx context.Context, args []string, sio stdio) error {
	fs := flag.NewFlagSet("decode sv2", flag.ContinueOnError)
	fs.SetOutput(sio.err)
	raw := fs.Bool("raw", false, "read raw frame bytes instead of hex lines")
	maxPayload := fs.Int("max-payload", sv2.DefaultMaxPayload, "largest payload accepted, in bytes (at most 16777215)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(sio.err, "decode sv2: unexpected arguments %q\n", fs.Args())
		return errUsage
	}
	if *maxPayload <= 0 || *maxPayload > sv2.MaxU24 {
		fmt.Fprintf(sio.err, "decode sv2: --max-payload must be between 1 and %d\n", sv2.MaxU24)
		return errUsage
	}
	out := bufio.NewWriter(sio.out)
	var err error
	if *raw {
		err = decodeSv2Raw(ctx, sio.in, out, *maxPayload)
	} else {
		err = decodeSv2Hex(ctx, sio.in, out, *maxPayload)
	}
	if ferr := out.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("writing output: %w", ferr)
	}
	return err
}

func decodeSv2Raw(ctx context.Context, in io.Reader, out io.Writer, maxPayload int) error {
	r := sv2.NewReader(in, maxPayload)
	var line []byte
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		at := r.Offset()
		h, payload, err := r.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err // names the offset already
		}
		if line, err = appendSv2JSON(line[:0], h, payload); err != nil {
			return fmt.Errorf("frame at offset %d: %w", at, err)
		}
		if _, err := out.Write(line); err != nil {
			return fmt.Errorf("writing output: %w", err)
		}
	}
}

func decodeSv2Hex(ctx context.Context, in io.Reader, out io.Writer, maxPayload int) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64<<10), 4*(maxPayload+sv2.HeaderLen)+4096)
	var frame, line []byte
	for n := 1; sc.Scan(); n++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		text := strings.Map(func(r rune) rune {
			if unicode.IsSpace(r) {
				return -1
			}
			return r
		}, sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		var err error
		frame, err = hex.AppendDecode(frame[:0], []byte(text))
		if err != nil {
			return fmt.Errorf("line %d: invalid hex: %w", n, err)
		}
		h, payload, rest, err := sv2.SplitFrame(frame, maxPayload)
		if err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
		if len(rest) != 0 {
			return fmt.Errorf("line %d: %d bytes after the frame (one frame per line)", n, len(rest))
		}
		if line, err = appendSv2JSON(line[:0], h, payload); err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
		if _, err := out.Write(line); err != nil {
			return fmt.Errorf("writing output: %w", err)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("reading input: line longer than a frame of --max-payload %d: %w", maxPayload, err)
		}
		return fmt.Errorf("reading input: %w", err)
	}
	return nil
}

// sv2HeaderKeys are the keys appendSv2JSON writes before a message's own
// fields; no message field may use them.
var sv2HeaderKeys = []string{"type", "subprotocol", "extension_type", "msg_type", "channel_msg", "msg_length"}

// appendSv2JSON appends one JSON object and a newline describing the
// frame: its message name under "type", header facts (sv2HeaderKeys),
// then the message fields under their specification names.
func appendSv2JSON(dst []byte, h sv2.Header, payload []byte) ([]byte, error) {
	c := sv2.Classify(h, payload)
	m, err := sv2.ParseMessage(h, payload)
	if err != nil {
		return dst, fmt.Errorf("%s: %w", c.Name, err)
	}
	dst = append(dst, `{"type":`...)
	dst = strconv.AppendQuote(dst, c.Name)
	dst = append(dst, `,"subprotocol":`...)
	dst = strconv.AppendQuote(dst, string(c.Protocol))
	dst = append(dst, `,"extension_type":`...)
	dst = strconv.AppendUint(dst, uint64(h.Extension()), 10)
	dst = append(dst, `,"msg_type":`...)
	dst = strconv.AppendUint(dst, uint64(h.MsgType), 10)
	dst = append(dst, `,"channel_msg":`...)
	dst = strconv.AppendBool(dst, h.ChannelMsg())
	dst = append(dst, `,"msg_length":`...)
	dst = strconv.AppendUint(dst, uint64(h.MsgLength), 10)
	if raw, ok := m.(*sv2.RawMessage); ok {
		if c.Has&sv2.KeyChannelID != 0 {
			dst = append(dst, `,"channel_id":`...)
			dst = strconv.AppendUint(dst, uint64(c.ChannelID), 10)
		}
		dst = append(dst, `,"payload":"`...)
		dst = hex.AppendEncode(dst, raw.Payload)
		return append(dst, "\"}\n"...), nil
	}
	fields, err := json.Marshal(m)
	if err != nil {
		return dst, fmt.Errorf("%s: encoding JSON: %w", c.Name, err)
	}
	if fields = bytes.TrimPrefix(fields, []byte("{")); len(fields) > 1 {
		dst = append(dst, ',')
	}
	dst = append(dst, fields...)
	return append(dst, '\n'), nil
}
