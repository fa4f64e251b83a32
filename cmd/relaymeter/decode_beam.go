package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/relaymeter/relaymeter/stratum/beam"
)

// decodeBeam reads Beam stratum lines from sio.in and writes one JSON
// object per message to sio.out: the method under "type", then the fields
// under their protocol names, api_key redacted. Blank lines are skipped.
// The first malformed line stops it with an error naming the line and its
// offset.
func decodeBeam(ctx context.Context, args []string, sio stdio) error {
	fs := flag.NewFlagSet("decode beam", flag.ContinueOnError)
	fs.SetOutput(sio.err)
	fs.Usage = func() {
		fmt.Fprintln(sio.err, "usage: relaymeter decode beam < lines")
		fmt.Fprintln(sio.err, "Prints each Beam stratum line as one JSON object; api_key values are redacted.")
	}
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(sio.err, "decode beam: unexpected arguments %q\n", fs.Args())
		return errUsage
	}
	out := bufio.NewWriter(sio.out)
	err := decodeBeamLines(ctx, beam.NewReader(sio.in), out)
	if ferr := out.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("writing output: %w", ferr)
	}
	return err
}

func decodeBeamLines(ctx context.Context, r *beam.Reader, out io.Writer) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		line, err := r.ReadLine()
		if err == io.EOF {
			return nil
		}
		var tooLong *beam.LineTooLongError
		if errors.As(err, &tooLong) {
			return err // names the line and offset
		}
		if err != nil {
			return fmt.Errorf("reading input: %w", err)
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		m, err := beam.Decode(line)
		if err != nil {
			return fmt.Errorf("line %d (offset %d): %w", r.Line(), r.Offset(), err)
		}
		buf.Reset()
		if err := enc.Encode(beamView(m)); err != nil {
			return fmt.Errorf("line %d (offset %d): encoding JSON: %w", r.Line(), r.Offset(), err)
		}
		if _, err := out.Write(buf.Bytes()); err != nil {
			return fmt.Errorf("writing output: %w", err)
		}
	}
}

// beamView returns the JSON shape printed for a message.
func beamView(m beam.Message) any {
	switch m := m.(type) {
	case *beam.Login:
		return struct {
			Type   string `json:"type"`
			ID     string `json:"id"`
			APIKey string `json:"api_key"`
		}{"login", m.ID, beam.Redacted}
	case *beam.Solution:
		return struct {
			Type   string `json:"type"`
			ID     string `json:"id"`
			Nonce  string `json:"nonce"`
			Output string `json:"output"`
		}{"solution", m.ID, m.Nonce, m.Output}
	case *beam.Job:
		return struct {
			Type       string `json:"type"`
			ID         string `json:"id"`
			Input      string `json:"input"`
			Difficulty uint32 `json:"difficulty"`
			Height     uint64 `json:"height"`
		}{"job", m.ID, m.Input, m.Difficulty, m.Height}
	case *beam.Cancel:
		return struct {
			Type string `json:"type"`
			ID   string `json:"id"`
		}{"cancel", m.ID}
	case *beam.Result:
		return struct {
			Type        string  `json:"type"`
			ID          string  `json:"id"`
			Code        int32   `json:"code"`
			Description string  `json:"description"`
			NoncePrefix string  `json:"nonceprefix,omitempty"`
			BlockHash   string  `json:"blockhash,omitempty"`
			ForkHeight  *uint64 `json:"forkheight,omitempty"`
			ForkHeight2 *uint64 `json:"forkheight2,omitempty"`
		}{"result", m.ID, int32(m.Code), m.Description, m.NoncePrefix, m.BlockHash, m.ForkHeight, m.ForkHeight2}
	}
	return struct {
		Type string `json:"type"`
	}{m.Method().String()}
}
