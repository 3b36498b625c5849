package natsstore

import (
	"errors"

	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/internal/updatecodec"
)

// The body of every message in the stream is one update in the encoding
// of internal/updatecodec (the embedded store's record format). The
// idempotency key is also sent as the Nats-Msg-Id header, for the stream's
// de-duplication, but the body alone restores the update.
const bodyVersion = updatecodec.Version

// errCorrupt reports a message body that does not decode.
var errCorrupt = errors.New("natsstore: corrupt message body")

// encode appends the body of u to dst.
func encode(dst []byte, u *hub.Update) []byte { return updatecodec.Append(dst, u) }

// encodedSize bounds len(encode(nil, u)), for capacity planning.
func encodedSize(u *hub.Update) int { return updatecodec.Size(u) }

// decode returns the update a body holds, positioned at pos. The update's
// strings share one copy of body, which may be reused afterwards. A body
// with flag bits this version does not define is refused.
func decode(body []byte, pos hub.Position) (*hub.Update, error) {
	if len(body) >= 2 && body[1]&^updatecodec.KnownFlags != 0 {
		return nil, errCorrupt
	}
	u, err := updatecodec.Decode(body, pos)
	if err != nil {
		return nil, errCorrupt
	}
	return u, nil
}
