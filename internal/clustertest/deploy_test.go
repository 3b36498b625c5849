package clustertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ssehub/ssehub/internal/testsvc"
)

const deployDir = "../../deploy"

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func parseFile(t *testing.T, name string) []any {
	t.Helper()
	docs, err := parseYAML(readFile(t, name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	crossCheckYAML(t, name, len(docs))
	return docs
}

// crossCheckYAML also parses the file with PyYAML when python3 has it:
// a full parser, to catch what the structural one might accept.
func crossCheckYAML(t *testing.T, name string, docs int) {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		return
	}
	if exec.Command("python3", "-c", "import yaml").Run() != nil {
		return
	}
	out, err := exec.Command("python3", "-c", "import sys, yaml; print(len([d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None]))", name).CombinedOutput()
	if err != nil {
		t.Errorf("PyYAML cannot parse %s: %v\n%s", name, err, out)
		return
	}
	if n, _ := strconv.Atoi(strings.TrimSpace(string(out))); n != docs {
		t.Errorf("%s: PyYAML reads %d documents, the structural parser %d", name, n, docs)
	}
}

func duration(t *testing.T, what string, v any) time.Duration {
	t.Helper()
	s, _ := v.(string)
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("%s: %q is not a duration", what, s)
	}
	return d
}

// TestComposeFile checks docker-compose.yml: Redis with appendfsync
// always, three hubs with identical settings on it (a cluster needs the
// same store, keys and public URL everywhere) whose stop grace period
// covers their drain, health checks on /readyz, and nginx with the
// cluster configuration.
func TestComposeFile(t *testing.T) {
	dir := filepath.Join(deployDir, "compose")
	docs := parseFile(t, filepath.Join(dir, "docker-compose.yml"))
	if len(docs) != 1 {
		t.Fatalf("%d documents", len(docs))
	}
	services, _ := path(docs[0], "services").(map[string]any)
	names := make([]string, 0, len(services))
	for n := range services {
		names = append(names, n)
	}
	slices.Sort(names)
	if want := []string{"nginx", "redis", "ssehub-1", "ssehub-2", "ssehub-3"}; !slices.Equal(names, want) {
		t.Fatalf("services %v, want %v", names, want)
	}
	cmd := fmt.Sprint(path(services, "redis", "command"))
	for _, want := range []string{"--appendonly yes", "--appendfsync always"} {
		if !strings.Contains(cmd, want) {
			t.Errorf("redis command %s lacks %q", cmd, want)
		}
	}
	var env0 any
	for _, n := range names[2:] {
		env := path(services, n, "environment")
		if env0 == nil {
			env0 = env
		} else if !reflect.DeepEqual(env, env0) {
			t.Errorf("%s's environment differs from ssehub-1's: %v versus %v", n, env, env0)
		}
		if store := fmt.Sprint(path(env, "SSEHUB_STORE")); store != "redis://redis:6379" {
			t.Errorf("%s: SSEHUB_STORE %q", n, store)
		}
		grace := duration(t, n+" SSEHUB_SHUTDOWN_GRACE", path(env, "SSEHUB_SHUTDOWN_GRACE"))
		if stop := duration(t, n+" stop_grace_period", path(services, n, "stop_grace_period")); stop <= grace {
			t.Errorf("%s: stop_grace_period %v does not exceed the drain's grace %v: Docker would SIGKILL mid-drain", n, stop, grace)
		}
		if hc := fmt.Sprint(path(services, n, "healthcheck", "test")); !strings.Contains(hc, "/readyz") {
			t.Errorf("%s: health check %s does not probe /readyz", n, hc)
		}
		if df := fmt.Sprint(path(services, n, "build", "dockerfile")); df != "deploy/compose/Dockerfile" {
			t.Errorf("%s: dockerfile %q", n, df)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "Dockerfile")); err != nil {
		t.Error(err)
	}
	vol := fmt.Sprint(path(services, "nginx", "volumes", 0))
	if src, _, _ := strings.Cut(vol, ":"); src != "./nginx.conf" {
		t.Errorf("nginx mounts %q, want ./nginx.conf", vol)
	}
}

// TestKubernetesFiles checks deploy/kubernetes: every document names its
// kind; the hubs are probed on /readyz and /healthz; the grace period
// covers the preStop pause and the drain; the Service and the disruption
// budget select the hubs; the Ingress keeps idle streams longer than the
// heartbeat; the engines are configured for durability.
func TestKubernetesFiles(t *testing.T) {
	dir := filepath.Join(deployDir, "kubernetes")
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no files in %s: %v", dir, err)
	}
	byKind := map[string]map[string]any{} // "Kind/name" -> document
	for _, f := range files {
		for i, d := range parseFile(t, f) {
			kind, _ := path(d, "kind").(string)
			name, _ := path(d, "metadata", "name").(string)
			if path(d, "apiVersion") == nil || kind == "" {
				t.Errorf("%s document %d has no apiVersion or kind", f, i)
				continue
			}
			if kind == "Kustomization" {
				for _, r := range path(d, "resources").([]any) {
					if _, err := os.Stat(filepath.Join(dir, r.(string))); err != nil {
						t.Errorf("kustomization lists %v: %v", r, err)
					}
				}
				continue
			}
			if name == "" {
				t.Errorf("%s document %d (%s) has no metadata.name", f, i, kind)
			}
			byKind[kind+"/"+name] = d.(map[string]any)
		}
	}
	need := func(key string) map[string]any {
		d, ok := byKind[key]
		if !ok {
			t.Fatalf("no %s in %s", key, dir)
		}
		return d
	}
	cm := need("ConfigMap/ssehub")
	dep := need("Deployment/ssehub")
	pod := path(dep, "spec", "template")
	c := path(pod, "spec", "containers", 0)
	if p := path(c, "readinessProbe", "httpGet", "path"); p != "/readyz" {
		t.Errorf("readiness probe on %v, want /readyz", p)
	}
	if p := path(c, "livenessProbe", "httpGet", "path"); p != "/healthz" {
		t.Errorf("liveness probe on %v, want /healthz", p)
	}
	if ref := path(c, "envFrom", 0, "configMapRef", "name"); ref != "ssehub" {
		t.Errorf("the hubs take their settings from %v", ref)
	}
	pre := fmt.Sprint(path(c, "lifecycle", "preStop", "exec", "command"))
	m := regexp.MustCompile(`^\[sleep (\d+)\]$`).FindStringSubmatch(pre)
	if m == nil {
		t.Fatalf("preStop %s is not a sleep", pre)
	}
	sleepFor, _ := strconv.Atoi(m[1])
	grace := duration(t, "SSEHUB_SHUTDOWN_GRACE", path(cm, "data", "SSEHUB_SHUTDOWN_GRACE"))
	term, err := strconv.Atoi(fmt.Sprint(path(pod, "spec", "terminationGracePeriodSeconds")))
	if err != nil {
		t.Fatalf("terminationGracePeriodSeconds: %v", err)
	}
	if time.Duration(term)*time.Second <= time.Duration(sleepFor)*time.Second+grace {
		t.Errorf("terminationGracePeriodSeconds %d does not exceed preStop %ds + drain grace %v", term, sleepFor, grace)
	}
	labels := path(pod, "metadata", "labels")
	for _, key := range []string{"Service/ssehub", "PodDisruptionBudget/ssehub"} {
		d := need(key)
		sel := path(d, "spec", "selector")
		if ml := path(sel, "matchLabels"); ml != nil {
			sel = ml
		}
		if !reflect.DeepEqual(sel, labels) {
			t.Errorf("%s selects %v; the hubs' labels are %v", key, sel, labels)
		}
	}
	hb := duration(t, "SSEHUB_HEARTBEAT", path(cm, "data", "SSEHUB_HEARTBEAT"))
	rt, err := strconv.Atoi(fmt.Sprint(path(need("Ingress/ssehub"), "metadata", "annotations", "nginx.ingress.kubernetes.io/proxy-read-timeout")))
	if err != nil || time.Duration(rt)*time.Second <= hb {
		t.Errorf("Ingress read timeout %ds (%v) does not exceed the heartbeat %v", rt, err, hb)
	}
	if b := path(need("Ingress/ssehub"), "metadata", "annotations", "nginx.ingress.kubernetes.io/proxy-buffering"); b != "off" {
		t.Errorf("Ingress proxy-buffering %v, want off", b)
	}
	store := fmt.Sprint(path(cm, "data", "SSEHUB_STORE"))
	if !strings.HasPrefix(store, "redis://redis:") {
		t.Errorf("SSEHUB_STORE %q does not name the redis Service", store)
	}
	need("Service/redis")
	need("StatefulSet/redis")
	redisConf := fmt.Sprint(path(need("ConfigMap/redis"), "data", "redis.conf"))
	for _, want := range []string{"appendonly yes\n", "appendfsync always\n"} {
		if !strings.Contains(redisConf, want) {
			t.Errorf("redis.conf lacks %q:\n%s", want, redisConf)
		}
	}
	natsConf := fmt.Sprint(path(need("ConfigMap/nats"), "data", "nats.conf"))
	for _, want := range []string{"store_dir:", "sync_interval: always"} {
		if !strings.Contains(natsConf, want) {
			t.Errorf("nats.conf lacks %q:\n%s", want, natsConf)
		}
	}
	need("StatefulSet/nats")
}

// nginxMain is a main configuration, with every path inside dir, that
// includes conf in its http block.
func nginxMain(dir, conf string) string {
	return fmt.Sprintf(`worker_processes 1;
pid %[1]s/nginx.pid;
error_log stderr info;
events { worker_connections 256; }
http {
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    access_log off;
    include %[2]s;
}
`, dir, conf)
}

// TestNginxConfigsAreValid runs nginx -t on deploy/nginx/cluster.conf as
// shipped and on the compose one (whose service names resolve only inside
// compose, so they are replaced by the loopback address), and checks the
// settings streams need.
func TestNginxConfigsAreValid(t *testing.T) {
	nginx := testsvc.Require(t, "nginx", "nginx")
	compose := readFile(t, filepath.Join(deployDir, "compose", "nginx.conf"))
	for _, c := range []struct{ name, conf string }{
		{"cluster.conf", readFile(t, filepath.Join(deployDir, "nginx", "cluster.conf"))},
		{"compose nginx.conf", regexp.MustCompile(`ssehub-\d:`).ReplaceAllString(compose, "127.0.0.1:")},
	} {
		dir := t.TempDir()
		conf := filepath.Join(dir, "site.conf")
		main := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(conf, []byte(c.conf), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(main, []byte(nginxMain(dir, conf)), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(nginx, "-t", "-p", dir, "-c", main, "-e", "stderr").CombinedOutput(); err != nil {
			t.Errorf("nginx -t on %s: %v\n%s", c.name, err, out)
		}
		for _, want := range []string{"least_conn;", "proxy_buffering off;", "proxy_http_version 1.1;", "proxy_next_upstream error timeout http_502 http_503;",
			// A subscribe no hub answered gets a retry, not a 502 that
			// would end a browser's EventSource for good.
			"error_page 502 504 =200 @ssehub_retry;", "location @ssehub_retry {"} {
			if !strings.Contains(c.conf, want) {
				t.Errorf("%s lacks %q", c.name, want)
			}
		}
		if regexp.MustCompile(`(?m)^\s*proxy_next_upstream [^;#]*non_idempotent`).MatchString(c.conf) {
			t.Errorf("%s lets nginx resend publishes", c.name)
		}
		m := regexp.MustCompile(`proxy_read_timeout (\d+)s;`).FindStringSubmatch(c.conf)
		if m == nil {
			t.Errorf("%s sets no proxy_read_timeout in seconds", c.name)
		} else if n, _ := strconv.Atoi(m[1]); time.Duration(n)*time.Second <= 25*time.Second {
			t.Errorf("%s: proxy_read_timeout %ss is not above the default heartbeat (25s)", c.name, m[1])
		}
	}
}

// TestBehindNginx runs deploy/nginx/cluster.conf (only the addresses
// substituted) in front of three hubs on Redis. Publishers and
// subscribers know nothing but the load balancer's URL; one hub is killed
// with SIGKILL mid-stream and started again. The recorder must find no
// acknowledged event lost and none repeated: nginx sends the reconnecting
// clients to the live hubs and they resume there.
func TestBehindNginx(t *testing.T) {
	nginx := testsvc.Require(t, "nginx", "nginx")
	c := StartCluster(t, binary, Engines[0].Start, 3)
	conf := readFile(t, filepath.Join(deployDir, "nginx", "cluster.conf"))
	port := testsvc.FreePort(t)
	subs := []struct{ old, new string }{{"listen 80;", "listen " + testsvc.Addr(port) + ";"}}
	for i, h := range c.Hubs {
		subs = append(subs, struct{ old, new string }{fmt.Sprintf("server 10.0.0.1%d:8080 ", i+1), "server " + h.Addr + " "})
	}
	for _, r := range subs {
		if n := strings.Count(conf, r.old); n != 1 {
			t.Fatalf("cluster.conf holds %q %d times; the test substitutes it and needs it once", r.old, n)
		}
		conf = strings.Replace(conf, r.old, r.new, 1)
	}
	dir := t.TempDir()
	site, main := filepath.Join(dir, "cluster.conf"), filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(site, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(main, []byte(nginxMain(dir, site)), 0o600); err != nil {
		t.Fatal(err)
	}
	ng := testsvc.Start(t, nginx, "-p", dir, "-c", main, "-e", "stderr", "-g", "daemon off;")
	// Before testsvc's SIGKILL (cleanups run last first): a killed master
	// leaves its worker running, holding the output pipe, and waiting for
	// the process would never end. SIGTERM makes the master stop the
	// worker first.
	t.Cleanup(func() {
		ng.Signal(syscall.SIGTERM)
		if ng.Wait(30*time.Second) == context.DeadlineExceeded {
			t.Error("nginx did not stop within 30 s of SIGTERM")
		}
	})
	testsvc.WaitTCP(t, ng, testsvc.Addr(port), 30*time.Second)

	// The load: as in the other tests, but every client has one URL.
	lb := &Cluster{t: t, Engine: c.Engine, Token: c.Token, Hubs: []*Hub{{Addr: testsvc.Addr(port)}}}
	l := startLoad(t, lb, loadConfig{subsPerNode: 6, publishers: 3})
	// least_conn spread the six streams over the three hubs: kill one.
	subscribers := l.subs
	sleep(time.Second)
	c.Hubs[2].Kill()
	sleep(2 * time.Second)
	c.Hubs[2].Restart()
	sleep(time.Second)
	l.finish()
	moved := 0
	for _, s := range subscribers {
		if s.Connections() > 1 {
			moved++
		}
	}
	if moved == 0 {
		t.Error("no subscriber reconnected: none was on the killed hub, and the test proved nothing")
	}
	t.Logf("%d of %d subscribers reconnected through nginx", moved, len(subscribers))
}
