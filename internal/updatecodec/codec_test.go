package updatecodec

import (
	"reflect"
	"testing"
	"time"

	"github.com/ssehub/ssehub/hub"
)

// FuzzDecode: whatever decodes re-encodes to an update that decodes the
// same, and nothing panics. The stores' golden files pin the bytes.
func FuzzDecode(f *testing.F) {
	f.Add(Append(nil, &hub.Update{ID: "a", Topics: []string{"t", "u"}, Type: "x", Data: "d\x00\n", Retry: time.Second, Private: true, Time: time.Unix(1, 2), IdempotencyKey: "k"}))
	f.Add(Append(nil, &hub.Update{Topics: []string{"t"}}))
	f.Add([]byte{Version, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := Decode(b, hub.Position{})
		if err != nil {
			return
		}
		enc := Append(nil, u)
		if len(enc) > Size(u) {
			t.Fatalf("Size %d < encoded length %d", Size(u), len(enc))
		}
		again, err := Decode(enc, hub.Position{})
		if err != nil {
			t.Fatalf("re-encoded update does not decode: %v", err)
		}
		if !reflect.DeepEqual(u, again) {
			t.Fatalf("round trip changed the update:\n%+v\n%+v", u, again)
		}
	})
}
