package bench

import (
	"bytes"
	"testing"
)

func TestPayloadRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		p    Payload
		size int
	}{
		{Payload{Topic: 0, Seq: 1, Sent: 1}, 0},
		{Payload{Topic: 7, Seq: 42, Sent: 1712345678901234567}, 100},
		{Payload{Topic: 1<<32 - 1, Seq: 1<<64 - 1, Sent: 1<<63 - 1}, MinPayloadSize},
		{Payload{Topic: 3, Seq: 9, Sent: 5}, 4096},
	}
	for _, tt := range tests {
		b := AppendPayload([]byte("prefix"), tt.p, tt.size)
		data := b[len("prefix"):]
		if tt.size >= MinPayloadSize && len(data) != tt.size {
			t.Errorf("AppendPayload(%+v, %d): %d bytes; want %d", tt.p, tt.size, len(data), tt.size)
		}
		got, err := ParsePayload(data)
		if err != nil || got != tt.p {
			t.Errorf("ParsePayload(%q) = %+v, %v; want %+v", data, got, err, tt.p)
		}
	}
}

func TestParsePayloadRejects(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		"", "sb1", "sb1.", "sb2.1.2.3.", "sb1.1.2.3", "sb1..2.3.", "sb1.1.2.x.",
		"sb1.4294967296.1.1.", "sb1.1.18446744073709551616.1.", "sb1.1.1.9223372036854775808.",
		"sb1.1.1.000000000000000000001.", "hello",
	} {
		if p, err := ParsePayload([]byte(s)); err == nil {
			t.Errorf("ParsePayload(%q) = %+v; want an error", s, p)
		}
	}
}

func FuzzParsePayload(f *testing.F) {
	f.Add([]byte("sb1.1.2.3.xxxx"))
	f.Add(AppendPayload(nil, Payload{Topic: 9, Seq: 99, Sent: 999}, 100))
	f.Add([]byte("sb1.99999999999.1.1."))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePayload(data)
		if err != nil {
			return
		}
		enc := AppendPayload(nil, p, 0)
		back, err := ParsePayload(enc)
		if err != nil || back != p {
			t.Fatalf("ParsePayload(%q) = %+v; re-encoded %q parses as %+v, %v", data, p, enc, back, err)
		}
		if !bytes.HasPrefix(data, []byte(payloadPrefix)) {
			t.Fatalf("ParsePayload(%q) accepted data without the prefix", data)
		}
	})
}
