package selector

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// ValidateTopic reports whether topic may be published: it must be non-empty,
// valid UTF-8, free of C0 and C1 control characters, U+007F and Unicode
// format (Cf) characters, and not exactly "*", which is the wildcard and
// therefore not addressable. It returns an *Error, or nil. It does not limit
// the length; the publish handler bounds the request body.
func ValidateTopic(topic string) error {
	switch topic {
	case "":
		return &Error{reason: "topic is empty"}
	case "*":
		return &Error{reason: `topic "*" is reserved for the wildcard`}
	}
	return checkChars("topic", topic)
}

// checkChars applies the Mercure character rules to s, a selector or topic
// described by what.
func checkChars(what, s string) error {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			return &Error{reason: fmt.Sprintf("%s is not valid UTF-8 at byte %d", what, i)}
		case r <= 0x1f || (r >= 0x7f && r <= 0x9f):
			return &Error{reason: fmt.Sprintf("%s contains control character %U at byte %d", what, r, i)}
		case r >= 0xad && unicode.Is(unicode.Cf, r):
			return &Error{reason: fmt.Sprintf("%s contains format character %U at byte %d", what, r, i)}
		}
		i += size
	}
	return nil
}
