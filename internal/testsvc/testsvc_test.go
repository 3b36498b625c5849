package testsvc

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"
)

func TestRedisAndNATSStart(t *testing.T) {
	r := StartRedis(t)
	c, err := net.Dial("tcp", r.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "+PONG") {
		t.Fatalf("redis answered %q, %v", line, err)
	}

	n := StartNATS(t)
	nc, err := net.Dial("tcp", n.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	line, err = bufio.NewReader(nc).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "INFO ") || !strings.Contains(line, `"jetstream":true`) {
		t.Fatalf("nats greeted with %q, %v", line, err)
	}
}
