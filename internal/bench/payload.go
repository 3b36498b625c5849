package bench

import (
	"errors"
	"strconv"
)

// Payload is what every benchmark event carries in its data, so that the
// receiver can compute latency and detect loss and duplication without
// any shared state with the publisher.
type Payload struct {
	// Topic is the index of the topic the event was published to.
	Topic uint32
	// Seq is the event's sequence number on its topic, from 1.
	Seq uint64
	// Sent is the wall-clock send time in Unix nanoseconds.
	Sent int64
}

// payloadPrefix starts every payload; it versions the format.
const payloadPrefix = "sb1."

// MinPayloadSize is the size of the longest payload head, the smallest
// size AppendPayload pads to without truncating anything.
const MinPayloadSize = len(payloadPrefix) + 10 + 1 + 20 + 1 + 19 + 1

// AppendPayload appends p to b as "sb1.TOPIC.SEQ.SENT." followed by 'x's
// up to size bytes. Every byte is in [0-9a-z.], safe unescaped in a form
// body, an SSE data line and JSON. Sizes below the head's length give the
// head alone.
func AppendPayload(b []byte, p Payload, size int) []byte {
	start := len(b)
	b = append(b, payloadPrefix...)
	b = strconv.AppendUint(b, uint64(p.Topic), 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, p.Seq, 10)
	b = append(b, '.')
	b = strconv.AppendInt(b, p.Sent, 10)
	b = append(b, '.')
	for len(b)-start < size {
		b = append(b, 'x')
	}
	return b
}

var errNotPayload = errors.New("not a benchmark payload")

// ParsePayload reads the payload at the start of data (the padding after
// it is not checked). It allocates nothing.
func ParsePayload(data []byte) (Payload, error) {
	if len(data) < len(payloadPrefix) || string(data[:len(payloadPrefix)]) != payloadPrefix {
		return Payload{}, errNotPayload
	}
	rest := data[len(payloadPrefix):]
	topic, rest, ok := number(rest, 1<<32-1)
	if !ok {
		return Payload{}, errNotPayload
	}
	seq, rest, ok := number(rest, 1<<64-1)
	if !ok {
		return Payload{}, errNotPayload
	}
	sent, _, ok := number(rest, 1<<63-1)
	if !ok {
		return Payload{}, errNotPayload
	}
	return Payload{Topic: uint32(topic), Seq: seq, Sent: int64(sent)}, nil
}

// number parses the decimal digits before the next '.', at most limit,
// and returns the rest after the dot.
func number(b []byte, limit uint64) (uint64, []byte, bool) {
	var n uint64
	for i, c := range b {
		switch {
		case c == '.' && i > 0:
			return n, b[i+1:], true
		case c < '0' || c > '9' || i >= 20:
			return 0, nil, false
		}
		d := uint64(c - '0')
		if n > (limit-d)/10 {
			return 0, nil, false
		}
		n = n*10 + d
	}
	return 0, nil, false
}
