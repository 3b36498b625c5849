package hub_test

import (
	"testing"

	"github.com/ssehub/ssehub/hub"
	"github.com/ssehub/ssehub/hub/storetest"
)

func TestLocalPresence(t *testing.T) {
	storetest.RunPresence(t, storetest.Presence{
		Open: func(*testing.T, string) hub.Presence { return hub.NewLocalPresence() },
	})
}
