package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ssehub/ssehub/auth/jwtauth"
	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/selector"
	"github.com/ssehub/ssehub/ssehttp"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testKey signs the tokens of the in-process hub.
const testKey = "bench-test-key-of-at-least-32-bytes"

// startHub starts an in-process ssehub (memory store, anonymous
// subscribers, publishers authenticated by testKey) and returns its hub
// URL.
func startHub(t *testing.T) string {
	t.Helper()
	return startHubWith(t, hub.Config{}, ssehttp.Config{})
}

// startHubWith is startHub with a hub configuration and the handler's
// limits (WriteTimeout) given.
func startHubWith(t *testing.T, hcfg hub.Config, limits ssehttp.Config) string {
	t.Helper()
	return startHubWrapped(t, hcfg, limits, nil)
}

// startHubWrapped is startHubWith with the hub's handler wrapped by wrap,
// unless wrap is nil.
func startHubWrapped(t *testing.T, hcfg hub.Config, limits ssehttp.Config, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	h, err := hub.New(hcfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	comp, err := selector.New(selector.Config{HubURL: base + ssehttp.DefaultPath})
	if err != nil {
		t.Fatal(err)
	}
	authn, err := jwtauth.New(jwtauth.Config{
		Selectors: comp,
		Publisher: jwtauth.Key{Secret: []byte(testKey)},
	})
	if err != nil {
		t.Fatal(err)
	}
	hd, err := ssehttp.New(ssehttp.Config{Hub: h, Compiler: comp, Auth: authn, Anonymous: true, Retry: -1, WriteTimeout: limits.WriteTimeout})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	var handler http.Handler = hd
	if wrap != nil {
		handler = wrap(hd)
	}
	mux.Handle(ssehttp.DefaultPath, handler)
	srv.Config.Handler = mux
	srv.Start()
	t.Cleanup(func() {
		hd.Drain()
		srv.Close()
		h.Close(context.Background())
	})
	return base + ssehttp.DefaultPath
}

// publisherToken mints a token publishing to every topic.
func publisherToken(t *testing.T) string {
	t.Helper()
	tok, err := jwtauth.Mint(jwtauth.Key{Secret: []byte(testKey)}, jwtauth.Claims{
		Subject: "bench-test", Publish: []string{"*"}, Expires: time.Now().Add(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
