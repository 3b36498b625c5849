package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/ssehub/ssehub/internal/bench"
)

// perWorker is how many subscribers `ssehub bench` gives each worker
// process by default, well under the 20,000 open files a process may have.
const perWorker = 15000

func benchCmd(ctx context.Context, stdio IO, args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "worker":
			// Hidden: a worker process of a run, driven over stdin/stdout.
			// Interrupted with its coordinator (one Ctrl-C reaches both),
			// it leaves the explaining to the coordinator.
			err := bench.ServeWorker(ctx, stdio.Stdin, stdio.Stdout)
			if ctx.Err() != nil {
				return nil
			}
			return err
		case "report":
			return benchReport(stdio, args[1:])
		case "replay":
			return benchReplay(ctx, stdio, args[1:])
		}
	}
	fs := flagSet("bench", "bench [flags]\n       ssehub bench report [--html FILE] RESULT.json...\n\n"+
		"Measures a Mercure hub: subscribers connected, events/s delivered and their latency.\n"+
		"Modes: a fixed --rate (default), --idle, --resume-storm, --ramp; --subscribers 0 measures publishing alone.\n"+
		"'bench report' prints saved --json results side by side and can draw them with --html.\n"+
		"'bench replay' has subscribers resume from earliest at once and checks each gets a history exactly once.", stdio)
	var (
		cfg                      bench.Config
		rate, rampStart, rampFac int
		events                   uint64
		key, subKey              string
		sourceIPs                listFlag
		inProcess, quiet         bool
		idle, storm, ramp        bool
		jsonFile, htmlFile       string
		workers                  int
	)
	fs.StringVar(&cfg.Hub, "hub", defaultHub, "URL of the hub (http only)")
	fs.StringVar(&cfg.Label, "label", "", "name of the run in reports (default: the hub URL)")
	fs.IntVar(&cfg.Subscribers, "subscribers", 1000, "subscribers to connect (0: measure publishing alone)")
	fs.IntVar(&cfg.Stalled, "stalled", 0, "extra subscribers that connect and then never read (a slow consumer); in no latency or loss figure")
	fs.IntVar(&cfg.Topics, "topics", 1, "distinct topics; subscriber i reads topic i mod --topics")
	fs.IntVar(&cfg.SharedPercent, "shared-percent", 0, "add a topic every subscriber reads, receiving this percentage of the events")
	fs.StringVar(&cfg.TopicPrefix, "topic-prefix", "https://bench.example/t/", "prefix of the topic names")
	fs.IntVar(&rate, "rate", 10, "events published per second over all publishers (0: as fast as the hub acknowledges)")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long to publish, or to hold idle subscribers")
	fs.Uint64Var(&events, "events", 0, "stop publishing after this many events (0: after --duration)")
	fs.IntVar(&cfg.PayloadSize, "payload", 100, "bytes of data per event")
	fs.IntVar(&cfg.Publishers, "publishers", 1, "concurrent keep-alive publishers")
	fs.BoolVar(&cfg.IDs, "ids", false, "publish with event IDs chosen by the tool instead of the hub")
	fs.StringVar(&cfg.PublisherToken, "token", "", "publisher JWT")
	fs.StringVar(&key, "jwt-key", "", "HMAC secret to mint the publisher token with, instead of --token")
	fs.StringVar(&cfg.SubscriberToken, "subscriber-token", "", "subscriber JWT (default: subscribe anonymously)")
	fs.StringVar(&subKey, "subscriber-jwt-key", "", "HMAC secret to mint a subscriber token with, instead of --subscriber-token")
	fs.Var(&sourceIPs, "source-ip", "local `address` to connect subscribers from (repeatable; default: 127.0.0.1, 127.0.0.2, ... one per 20000 subscribers for a 127.x hub)")
	fs.IntVar(&workers, "workers", 0, "worker processes holding the subscribers (0: one per 15000)")
	fs.BoolVar(&inProcess, "in-process", false, "hold the subscribers in this process instead of worker processes")
	fs.IntVar(&cfg.ConnectConcurrency, "connect-concurrency", 100, "connections being opened at once")
	fs.DurationVar(&cfg.ConnectTimeout, "connect-timeout", 2*time.Minute, "how long connecting every subscriber may take")
	fs.DurationVar(&cfg.Settle, "settle", 2*time.Second, "pause after connecting, before measuring memory")
	fs.DurationVar(&cfg.DrainTimeout, "drain-timeout", 10*time.Second, "how long to wait, after publishing, for every event to arrive")
	fs.BoolVar(&idle, "idle", false, "connect the subscribers and hold them for --duration without publishing")
	fs.BoolVar(&storm, "resume-storm", false, "all subscribers disconnect and resume --behind events back at once")
	fs.Uint64Var(&cfg.Behind, "behind", 100, "how many events back subscribers resume in --resume-storm (at most 1000)")
	fs.DurationVar(&cfg.StormTimeout, "storm-timeout", time.Minute, "how long the subscribers may take to be live again after the storm")
	fs.BoolVar(&ramp, "ramp", false, "publish at rising rates until the hub saturates")
	fs.IntVar(&rampStart, "ramp-start", 10, "first rate of --ramp, in events/s")
	fs.IntVar(&rampFac, "ramp-factor", 2, "the rate is multiplied by this at each step of --ramp")
	fs.DurationVar(&cfg.Ramp.Step, "ramp-step", 5*time.Second, "duration of each step of --ramp")
	fs.DurationVar(&cfg.Ramp.MaxP99, "ramp-p99", 500*time.Millisecond, "--ramp stops after the step whose p99 latency passes this")
	fs.IntVar(&cfg.Ramp.MaxSteps, "ramp-steps", 12, "most steps of --ramp")
	fs.IntVar(&cfg.PID, "pid", 0, "process ID of the hub, to measure its memory and CPU from /proc")
	fs.StringVar(&jsonFile, "json", "", "write the result as JSON to this `file`")
	fs.StringVar(&htmlFile, "html", "", "write the result as an HTML page with charts to this `file`")
	fs.BoolVar(&quiet, "quiet", false, "no progress lines on stderr")
	if err := parse(fs, args, stdio); err != nil {
		return err
	}
	from := func(name string) string { return origin(fs, stdio, name) }
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if u, err := url.Parse(cfg.Hub); err != nil || u.Scheme != "http" || u.Host == "" {
		return usagef("%s must be an http URL", from("hub"))
	}
	nonNeg := map[string]int{"subscribers": cfg.Subscribers, "stalled": cfg.Stalled, "rate": rate, "workers": workers, "payload": cfg.PayloadSize}
	for _, name := range []string{"subscribers", "stalled", "rate", "workers", "payload"} {
		if nonNeg[name] < 0 {
			return usagef("%s must not be negative", from(name))
		}
	}
	positive := map[string]int{"topics": cfg.Topics, "publishers": cfg.Publishers, "connect-concurrency": cfg.ConnectConcurrency,
		"ramp-start": rampStart, "ramp-steps": cfg.Ramp.MaxSteps}
	for _, name := range []string{"topics", "publishers", "connect-concurrency", "ramp-start", "ramp-steps"} {
		if positive[name] <= 0 {
			return usagef("%s must be positive", from(name))
		}
	}
	durations := map[string]time.Duration{"duration": cfg.Duration, "connect-timeout": cfg.ConnectTimeout, "drain-timeout": cfg.DrainTimeout,
		"storm-timeout": cfg.StormTimeout, "ramp-step": cfg.Ramp.Step, "ramp-p99": cfg.Ramp.MaxP99}
	for _, name := range []string{"duration", "connect-timeout", "drain-timeout", "storm-timeout", "ramp-step", "ramp-p99"} {
		if durations[name] <= 0 {
			return usagef("%s must be positive", from(name))
		}
	}
	switch {
	case cfg.Settle < 0:
		return usagef("%s must not be negative", from("settle"))
	case cfg.SharedPercent < 0 || cfg.SharedPercent > 100:
		return usagef("%s must be 0 to 100", from("shared-percent"))
	case rampFac < 2:
		return usagef("%s must be at least 2", from("ramp-factor"))
	case cfg.Behind == 0 || cfg.Behind > 1000:
		return usagef("%s must be 1 to 1000", from("behind"))
	case cfg.PID < 0:
		return usagef("%s must not be negative", from("pid"))
	case cfg.PublisherToken != "" && key != "":
		return usagef("--token and --jwt-key both give the publisher token: set one")
	case cfg.SubscriberToken != "" && subKey != "":
		return usagef("--subscriber-token and --subscriber-jwt-key both give the subscriber token: set one")
	case inProcess && workers > 0:
		return usagef("--in-process and --workers both say where subscribers live: set one")
	case storm && cfg.SharedPercent > 0:
		return usagef("--resume-storm needs one topic per subscriber: drop --shared-percent")
	}
	modes := 0
	for _, on := range []bool{idle, storm, ramp} {
		if on {
			modes++
		}
	}
	switch {
	case modes > 1:
		return usagef("--idle, --resume-storm and --ramp exclude each other: set one")
	case modes == 1 && cfg.Subscribers == 0:
		return usagef("--idle, --resume-storm and --ramp need subscribers: set --subscribers")
	case idle:
		cfg.Mode = bench.ModeIdle
	case storm:
		cfg.Mode = bench.ModeStorm
	case ramp:
		cfg.Mode = bench.ModeRamp
	}
	cfg.Rate, cfg.Events = float64(rate), events
	cfg.Ramp.Start, cfg.Ramp.Factor = float64(rampStart), float64(rampFac)
	cfg.SourceIPs = sourceIPs
	if key != "" {
		if err := checkKey(from("jwt-key"), key); err != nil {
			return err
		}
		tok, err := mintToken(key, "ssehub-bench", []string{"*"}, nil, 24*time.Hour)
		if err != nil {
			return err
		}
		cfg.PublisherToken = tok
	}
	if subKey != "" {
		if err := checkKey(from("subscriber-jwt-key"), subKey); err != nil {
			return err
		}
		tok, err := mintToken(subKey, "ssehub-bench", nil, []string{"*"}, 24*time.Hour)
		if err != nil {
			return err
		}
		cfg.SubscriberToken = tok
	}
	switch {
	case inProcess || cfg.Subscribers+cfg.Stalled == 0:
		cfg.Workers = 0
	case workers > 0:
		cfg.Workers = workers
	default:
		cfg.Workers = (cfg.Subscribers + cfg.Stalled + perWorker - 1) / perWorker
	}
	if cfg.Workers > 0 {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("finding this program to start workers: %w", err)
		}
		cfg.WorkerCommand = func() *exec.Cmd { return exec.Command(exe, "bench", "worker") }
		cfg.WorkerStderr = stdio.Stderr
	}
	if !quiet {
		cfg.Progress = stdio.Stderr
	}
	if err := cfg.Validate(); err != nil {
		return usageError{err.Error()}
	}
	res, err := bench.Run(ctx, cfg)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return errors.New("interrupted")
		}
		return err
	}
	fmt.Fprintln(stdio.Stdout)
	if err := bench.WriteText(stdio.Stdout, res); err != nil {
		return err
	}
	return writeResults(jsonFile, htmlFile, []*bench.Result{res})
}

// writeResults writes the results as JSON (one result: an object; more:
// an array) and as an HTML page, for each file given.
func writeResults(jsonFile, htmlFile string, rs []*bench.Result) error {
	if jsonFile != "" {
		var v any = rs
		if len(rs) == 1 {
			v = rs[0]
		}
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(jsonFile, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("writing --json: %w", err)
		}
	}
	if htmlFile != "" {
		var title []string
		for _, r := range rs {
			title = append(title, r.Mode)
		}
		f, err := os.Create(htmlFile)
		if err != nil {
			return fmt.Errorf("writing --html: %w", err)
		}
		err = bench.WriteHTML(f, "ssehub bench: "+strings.Join(dedupe(title), ", "), rs...)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("writing --html: %w", err)
		}
	}
	return nil
}

func dedupe(ss []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// benchReport prints saved results side by side.
func benchReport(stdio IO, args []string) error {
	fs := flagSet("bench report", "bench report [--html FILE] RESULT.json...", stdio)
	var htmlFile string
	fs.StringVar(&htmlFile, "html", "", "also draw the results in an HTML page written to this `file`")
	if err := parse(fs, args, stdio); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("want at least one RESULT.json written by ssehub bench --json")
	}
	var rs []*bench.Result
	for _, name := range fs.Args() {
		b, err := os.ReadFile(name)
		if err != nil {
			return err
		}
		var r bench.Result
		if err := json.Unmarshal(b, &r); err != nil || r.Mode == "" {
			return fmt.Errorf("%s: not a result of ssehub bench --json", name)
		}
		rs = append(rs, &r)
	}
	if err := bench.WriteText(stdio.Stdout, rs...); err != nil {
		return err
	}
	return writeResults("", htmlFile, rs)
}

// benchReplay runs `ssehub bench replay`: subscribers that all resume from
// earliest at once, each checked to receive the whole history (filled by
// a publishing run) exactly once, with the hub's memory sampled.
func benchReplay(ctx context.Context, stdio IO, args []string) error {
	fs := flagSet("bench replay", "bench replay [flags]\n\n"+
		"Has --subscribers resume from earliest on --topic at once, and checks that each receives\n"+
		"sequence numbers 1 to --events exactly once: the history of a publishing run such as\n"+
		"ssehub bench --subscribers 0 --rate 0 --events N.", stdio)
	var (
		cfg      bench.ReplayConfig
		jsonFile string
	)
	fs.StringVar(&cfg.Hub, "hub", defaultHub, "URL of the hub (http only)")
	fs.StringVar(&cfg.Topic, "topic", "https://bench.example/t/0", "topic of the history")
	fs.IntVar(&cfg.Subscribers, "subscribers", 100, "subscribers replaying at once")
	fs.Uint64Var(&cfg.Events, "events", 0, "events in the history: each subscriber must receive sequence numbers 1 to this")
	fs.IntVar(&cfg.HubPID, "hub-pid", 0, "process ID of the hub on this machine, to report its resident memory (0: not measured)")
	fs.DurationVar(&cfg.Timeout, "timeout", 30*time.Minute, "how long the replay may take")
	fs.StringVar(&jsonFile, "json", "", "also write the result as JSON to this `file`")
	if err := parse(fs, args, stdio); err != nil {
		return err
	}
	if cfg.Events == 0 {
		return usagef("%s must be positive", origin(fs, stdio, "events"))
	}
	if cfg.Subscribers < 1 {
		return usagef("%s must be positive", origin(fs, stdio, "subscribers"))
	}
	cfg.Progress = stdio.Stderr
	res, err := bench.RunReplay(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdio.Stdout, "replay: %d subscribers x %d events in %.1f s (%.0f events/s delivered)\n",
		res.Subscribers, res.Events, res.Seconds, float64(res.Delivered)/res.Seconds)
	fmt.Fprintf(stdio.Stdout, "delivered %d; complete %d/%d; duplicated %d; missing %d; gap notices %d\n",
		res.Delivered, res.Complete, res.Subscribers, res.Duplicated, res.Missing, res.Gaps)
	if cfg.HubPID != 0 {
		fmt.Fprintf(stdio.Stdout, "hub RSS: %.1f MiB before; peak %.1f MiB (VmHWM); sampled peaks: anonymous %.1f MiB, file-backed %.1f MiB\n",
			mib(res.RSSBefore), mib(res.RSSPeak), mib(res.RSSAnonPeak), mib(res.RSSFilePeak))
	}
	for _, e := range res.Errors {
		fmt.Fprintln(stdio.Stdout, "error:", e)
	}
	if jsonFile != "" {
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(jsonFile, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if res.Complete != res.Subscribers {
		return fmt.Errorf("%d of %d subscribers did not receive the history exactly once", res.Subscribers-res.Complete, res.Subscribers)
	}
	return nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
