package sse

import (
	"fmt"
	"math"
	"math/big"
	"strings"
	"time"
)

// This file holds the test oracle: a slow, literal transcription of the
// WHATWG algorithms that reads a whole stream at once. The Decoder must
// agree with it on every input, however the input is chunked.

type refRetry struct{ d time.Duration }

type refResult struct {
	items  []string // "event ...\n" and "comment ...\n" lines, in order
	events []Event
	lastID string
	retry  *refRetry
}

// refUTF8Decode is the WHATWG Encoding Standard's UTF-8 decoder, step by
// step, without BOM handling.
func refUTF8Decode(b []byte) []rune {
	var out []rune
	var cp rune
	needed, seen := 0, 0
	lower, upper := byte(0x80), byte(0xBF)
	for i := 0; i < len(b); {
		c := b[i]
		if needed == 0 {
			switch {
			case c <= 0x7F:
				out = append(out, rune(c))
			case c >= 0xC2 && c <= 0xDF:
				needed, cp = 1, rune(c&0x1F)
			case c >= 0xE0 && c <= 0xEF:
				if c == 0xE0 {
					lower = 0xA0
				}
				if c == 0xED {
					upper = 0x9F
				}
				needed, cp = 2, rune(c&0xF)
			case c >= 0xF0 && c <= 0xF4:
				if c == 0xF0 {
					lower = 0x90
				}
				if c == 0xF4 {
					upper = 0x8F
				}
				needed, cp = 3, rune(c&0x7)
			default:
				out = append(out, 0xFFFD)
			}
			i++
			continue
		}
		if c < lower || c > upper {
			cp, needed, seen, lower, upper = 0, 0, 0, 0x80, 0xBF
			out = append(out, 0xFFFD)
			continue // the byte is processed again
		}
		lower, upper = 0x80, 0xBF
		cp = cp<<6 | rune(c&0x3F)
		seen++
		i++
		if seen == needed {
			out = append(out, cp)
			cp, needed, seen = 0, 0, 0
		}
	}
	if needed != 0 {
		out = append(out, 0xFFFD)
	}
	return out
}

// refDecode parses a complete stream that ends at EOF.
func refDecode(input []byte, lastID string, comments bool) refResult {
	res := refResult{lastID: lastID}
	text := string(refUTF8Decode(input))
	text = strings.TrimPrefix(text, "\uFEFF")
	var data, typ strings.Builder
	idBuf := lastID
	for {
		i := strings.IndexAny(text, "\r\n")
		if i < 0 {
			break // no line terminator: the rest is discarded at EOF
		}
		line := text[:i]
		if strings.HasPrefix(text[i:], "\r\n") {
			text = text[i+2:]
		} else {
			text = text[i+1:]
		}
		if line == "" {
			res.lastID = idBuf
			if data.Len() == 0 {
				typ.Reset()
				continue
			}
			d := strings.TrimSuffix(data.String(), "\n")
			ev := Event{ID: res.lastID, Type: typ.String(), Data: d}
			if ev.Type == "" {
				ev.Type = "message"
			}
			res.events = append(res.events, ev)
			res.items = append(res.items, fmt.Sprintf("event type=%s id=%s data=%s\n", quote(ev.Type), quote(ev.ID), quote(ev.Data)))
			data.Reset()
			typ.Reset()
			continue
		}
		if line[0] == ':' {
			if comments {
				res.items = append(res.items, fmt.Sprintf("comment %s\n", quote(line[1:])))
			}
			continue
		}
		field, value, found := strings.Cut(line, ":")
		if found {
			value = strings.TrimPrefix(value, " ")
		}
		switch field {
		case "event":
			typ.Reset()
			typ.WriteString(value)
		case "data":
			data.WriteString(value)
			data.WriteByte('\n')
		case "id":
			if !strings.Contains(value, "\x00") {
				idBuf = value
			}
		case "retry":
			if value != "" && strings.Trim(value, "0123456789") == "" {
				n, _ := new(big.Int).SetString(value, 10)
				d := time.Duration(math.MaxInt64)
				if n.Cmp(big.NewInt(math.MaxInt64/int64(time.Millisecond))) <= 0 {
					d = time.Duration(n.Int64()) * time.Millisecond
				}
				res.retry = &refRetry{d}
			}
		}
	}
	return res
}
