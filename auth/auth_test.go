package auth_test

import (
	"encoding/json"
	"testing"

	"go.uber.org/goleak"

	"github.com/ssehub/ssehub/auth"
	"github.com/ssehub/ssehub/hub"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err                *auth.Error
		status             int
		code, desc, challe string
	}{
		{auth.InvalidToken("signing method %s is not allowed", "HS256"), 401, "invalid_token", "signing method HS256 is not allowed",
			`Bearer error="invalid_token", error_description="signing method HS256 is not allowed"`},
		{auth.InvalidRequest("bad %q", "x\ny"), 400, "invalid_request", "bad \"x\\ny\"",
			`Bearer error="invalid_request", error_description="bad \"x\\ny\""`},
	}
	for _, tt := range tests {
		if tt.err.Status != tt.status || tt.err.Code != tt.code || tt.err.Description != tt.desc {
			t.Errorf("got %d %q %q; want %d %q %q", tt.err.Status, tt.err.Code, tt.err.Description, tt.status, tt.code, tt.desc)
		}
		if got := tt.err.Challenge(); got != tt.challe {
			t.Errorf("Challenge() = %s; want %s", got, tt.challe)
		}
	}
}

func TestPayloadFor(t *testing.T) {
	t.Parallel()
	g := &auth.Grant{
		Payload: json.RawMessage(`"default"`),
		Payloads: []auth.Payload{
			{Match: hub.Exact("a"), Data: json.RawMessage(`1`)},
			{Match: hub.MatchAll, Data: json.RawMessage(`2`)},
		},
	}
	for sel, want := range map[string]string{"a": "1", "b": "2"} {
		if got := string(g.PayloadFor(sel)); got != want {
			t.Errorf("PayloadFor(%q) = %s; want %s", sel, got, want)
		}
	}
	if got := string((&auth.Grant{Payload: json.RawMessage(`3`)}).PayloadFor("x")); got != "3" {
		t.Errorf("fallback PayloadFor = %s; want 3", got)
	}
	if (*auth.Grant)(nil).PayloadFor("x") != nil {
		t.Error("nil grant has a payload")
	}
}
