package bench

import (
	"os/exec"
	"testing"
	"time"

	"github.com/ssehub/ssehub/internal/testsvc"
)

// TestWorkerProcesses runs subscribers in two worker processes of the
// real ssehub binary (`ssehub bench worker`), the path runs with more
// subscribers than one process may hold take.
func TestWorkerProcesses(t *testing.T) {
	bin, err := testsvc.BuildSSEHub(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	res := runOK(t, Config{
		Hub: startHub(t), PublisherToken: publisherToken(t),
		Subscribers: 40, Stalled: 3, Topics: 2, Events: 100, Publishers: 2, Duration: time.Minute,
		Workers:       2,
		WorkerCommand: func() *exec.Cmd { return exec.Command(bin, "bench", "worker") },
		// Two source addresses, as for more subscribers than one
		// address has ports.
		SourceIPs: []string{"127.0.0.1", "127.0.0.2"},
	})
	checkDelivery(t, res, 100, 20)
	if res.Stalled != 3 || res.StalledConnected != 3 {
		t.Errorf("stalled %d connected %d; want 3 3", res.Stalled, res.StalledConnected)
	}
	if res.Client.Processes != 3 {
		t.Errorf("client processes %d; want 3 (coordinator and two workers)", res.Client.Processes)
	}
	if res.Client.RSSPerSubscriber <= 0 {
		t.Errorf("client RSS per subscriber %v; want the workers' memory", res.Client.RSSPerSubscriber)
	}
}
