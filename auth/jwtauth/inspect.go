package jwtauth

import (
	"errors"

	"github.com/golang-jwt/jwt/v5"
)

// Decoded is a token's header and claims, read WITHOUT verifying its
// signature: for explaining a token (the "ssehub token inspect" command),
// never for trusting it.
type Decoded struct {
	// Header is the JOSE header.
	Header map[string]any
	// Claims is the payload.
	Claims map[string]any
}

// Decode reads token's header and claims without verifying it. It fails
// only when the token is not a JWS compact serialization with JSON header
// and payload.
func Decode(token string) (*Decoded, error) {
	claims := jwt.MapClaims{}
	t, _, err := jwt.NewParser().ParseUnverified(token, claims)
	if err != nil {
		return nil, errors.New("not a JWT: want three base64url parts with a JSON header and payload")
	}
	return &Decoded{Header: t.Header, Claims: claims}, nil
}
