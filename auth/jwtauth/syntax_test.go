package jwtauth

import (
	"regexp"
	"testing"
)

// b64tokenRE is the RFC 6750 token syntax as a regular expression, the
// reference isB64token is checked against.
var b64tokenRE = regexp.MustCompile(`^[A-Za-z0-9\-._~+/]+=*$`)

func FuzzB64token(f *testing.F) {
	for _, s := range []string{"", "=", "a", "a=", "a==", "a=b", "eyJ.a-b_c~d+e/f==", "a b", "a\n", "é", "a=\x00", "~", "+/="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := isB64token(s), b64tokenRE.MatchString(s); got != want {
			t.Fatalf("isB64token(%q) = %v; want %v", s, got, want)
		}
	})
}
