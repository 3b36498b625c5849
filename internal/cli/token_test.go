package cli_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ssehub/ssehub/auth/jwtauth"
	"github.com/ssehub/ssehub/internal/cli"
)

const inspectKey = "inspect-test-key-of-at-least-32-bytes"

// runCLI runs ssehub with args and stdin, without the environment.
func runCLI(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	noEnv := func(string) (string, bool) { return "", false }
	code = cli.Main(context.Background(), args, cli.IO{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb, Getenv: noEnv})
	return code, out.String(), errb.String()
}

func TestTokenInspect(t *testing.T) {
	t.Parallel()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	doc, _ := json.Marshal(map[string]any{"keys": []any{map[string]any{"kty": "RSA", "kid": "k1", "n": b64(key.N.Bytes()), "e": b64(big.NewInt(int64(key.E)).Bytes())}}})
	jwks := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(jwks, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	mint := func(c jwtauth.Claims) string {
		tok, err := jwtauth.Mint(jwtauth.Key{Secret: []byte(inspectKey)}, c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	rs := func(header map[string]any, claims jwt.MapClaims) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
		for k, v := range header {
			tok.Header[k] = v
		}
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	hour := time.Now().Add(time.Hour)
	valid := mint(jwtauth.Claims{Subject: "alice", Subscribe: []string{"*"}, Expires: hour, Audience: []string{"https://hub"}})
	expired := mint(jwtauth.Claims{Subject: "bob", Publish: []string{"*"}, Expires: time.Now().Add(-time.Hour)})
	// A data directory holding the key, as ssehub serve keeps it, and one
	// holding none.
	data, empty := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "publisher.key"), []byte(inspectKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  []string // in stdout+stderr
	}{
		{"accepted", "", []string{"--publisher-key", inspectKey, valid}, 0,
			[]string{`alg="HS256"`, `sub:     "alice"`, "exp:", "(in ", "claim:   mercure", "publisher:  accepted", "subscriber: accepted"}},
		{"expired", "", []string{"--publisher-key", inspectKey, expired}, 1,
			[]string{"ago)", "publisher:  refused: token is expired", "subscriber: refused: token is expired", "the hub would refuse this token"}},
		{"wrong key", "", []string{"--publisher-key", strings.Repeat("k", 32), valid}, 1, []string{"refused: signature is invalid"}},
		{"audience", "", []string{"--publisher-key", inspectKey, "--jwt-audience", "https://other", "--role", "subscriber", valid}, 1,
			[]string{"subscriber: refused: wrong audience"}},
		{"subscriber key", "", []string{"--publisher-key", strings.Repeat("p", 32), "--subscriber-key", inspectKey, valid}, 0,
			[]string{"publisher:  refused: signature is invalid", "subscriber: accepted"}},
		{"from stdin with Bearer", "Bearer " + valid + "\n", []string{"--publisher-key", inspectKey, "-"}, 0, []string{"publisher:  accepted"}},
		{"JWK Set", "", []string{"--publisher-jwks", jwks, rs(map[string]any{"kid": "k1"}, jwt.MapClaims{"exp": hour.Unix()})}, 0, []string{`kid="k1"`, "publisher:  accepted"}},
		{"JWK Set, jku ignored", "", []string{"--publisher-jwks", jwks, rs(map[string]any{"kid": "evil", "jku": "https://evil.example/jwks"}, jwt.MapClaims{})}, 1,
			[]string{"jku header present: ignored", "refused: unknown key id evil"}},
		{"HMAC against the JWK Set", "", []string{"--publisher-jwks", jwks, "--jwt-alg", "RS256", valid}, 1, []string{"refused: signing method HS256 is not allowed"}},
		{"not a JWT", "", []string{"--publisher-key", inspectKey, "hello"}, 1, []string{"not a JWT", "refused: token is malformed"}},
		{"no key", "", []string{"--data", empty, valid}, 2, []string{"no key: set --publisher-key, --publisher-public-key or --publisher-jwks as the hub has them (or point --data at the directory where ssehub serve keeps its generated key; " + filepath.Join(empty, "publisher.key") + " has none)"}},
		{"key from --data", "", []string{"--data", data, valid}, 0, []string{"publisher:  accepted", "subscriber: accepted"}},
		{"key from --data, subscriber key given", "", []string{"--data", data, "--subscriber-key", strings.Repeat("s", 32), valid}, 0, []string{"publisher:  accepted", "subscriber: refused: signature is invalid"}},
		{"--publisher-key wins over --data", "", []string{"--data", data, "--publisher-key", strings.Repeat("p", 32), "--role", "publisher", valid}, 1, []string{"publisher:  refused: signature is invalid"}},
		{"--publisher-jwks wins over --data", "", []string{"--data", data, "--publisher-jwks", jwks, "--role", "publisher", valid}, 1, []string{"publisher:  refused"}},
		{"two keys for one role", "", []string{"--publisher-key", inspectKey, "--publisher-jwks", jwks, valid}, 2, []string{"set one of --publisher-key, --publisher-public-key and --publisher-jwks"}},
		{"bad role", "", []string{"--publisher-key", inspectKey, "--role", "admin", valid}, 2, []string{"want publisher, subscriber or both"}},
		{"no token", "", []string{"--publisher-key", inspectKey}, 2, []string{"want one argument"}},
		{"short key", "", []string{"--publisher-key", "short", valid}, 1, []string{"--publisher-key: the HMAC secret is 5 bytes"}},
		{"HMAC algorithm for an RSA key", "", []string{"--publisher-jwks", jwks, "--jwt-alg", "HS256", valid}, 1, []string{`"HS256" cannot be used with a JWK Set`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := runCLI(t, tc.stdin, append([]string{"token", "inspect"}, tc.args...)...)
			all := stdout + stderr
			if code != tc.code {
				t.Errorf("exit %d; want %d\n%s", code, tc.code, all)
			}
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("output lacks %q:\n%s", w, all)
				}
			}
			if strings.Contains(all, inspectKey) {
				t.Error("the output shows the key")
			}
			for _, arg := range tc.args {
				if parts := strings.Split(arg, "."); len(parts) == 3 && len(parts[2]) > 10 && strings.Contains(all, parts[2]) {
					t.Error("the output shows the token's signature")
				}
			}
		})
	}
}

// TestServeSecurityFlags checks the flag errors of serve's security and
// limit flags; none starts a server.
func TestServeSecurityFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--max-streams", "-1"}, 2, "--max-streams must not be negative"},
		{[]string{"--max-streams-per-ip", "-3"}, 2, "--max-streams-per-ip must not be negative"},
		{[]string{"--tail-bytes", "-1"}, 2, "--tail-bytes must not be negative"},
		{[]string{"--queue-bytes", "-1"}, 2, "--queue-bytes must not be negative"},
		{[]string{"--idempotency-bytes", "-1"}, 2, "--idempotency-bytes must not be negative"},
		{[]string{"--publish-rate", "-1"}, 2, "--publish-rate must be a number"},
		{[]string{"--publish-rate", "NaN"}, 2, "--publish-rate must be a number"},
		{[]string{"--max-body-bytes", "0"}, 2, "--max-body-bytes must be positive"},
		{[]string{"--read-header-timeout", "0s"}, 2, "--read-header-timeout must be positive"},
		{[]string{"--max-lifetime", "-1s"}, 2, "--max-lifetime must not be negative"},
		{[]string{"--replay-limit", "-1"}, 2, "--replay-limit must not be negative"},
		{[]string{"--jwt-leeway", "-1s"}, 2, "--jwt-leeway must not be negative"},
		{[]string{"--cookie-name", "a;b"}, 2, "--cookie-name is not a valid cookie name"},
		{[]string{"--publisher-key", inspectKey, "--publisher-public-key", "k.pem"}, 2, "set one of --publisher-key"},
		{[]string{"--subscriber-jwks", "https://idp.example/jwks"}, 2, "a subscriber key needs a publisher key"},
		{[]string{"--publisher-jwks", "http://idp.example/jwks", "--store", "memory", "--addr", "127.0.0.1:0"}, 1, "must use https"},
	} {
		code, _, stderr := runCLI(t, "", append([]string{"serve"}, tc.args...)...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("serve %v: exit %d %q; want %d %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}
}
