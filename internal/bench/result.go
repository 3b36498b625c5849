package bench

import "time"

// Result is everything one run measured. Its JSON form is what
// `ssehub bench --json` writes and `ssehub bench report` reads.
type Result struct {
	// Label names the run, e.g. the hub measured.
	Label string `json:"label"`
	// Mode is load, publish (load without subscribers), idle,
	// resume-storm or ramp.
	Mode    string    `json:"mode"`
	Hub     string    `json:"hub"`
	Started time.Time `json:"started"`
	Params  Params    `json:"params"`

	// Subscribers is how many subscribers were asked for, Connected how
	// many were live at once, ConnectSeconds how long until the last one
	// was, and ConnectPerSecond their ratio.
	Subscribers      int     `json:"subscribers"`
	Connected        uint64  `json:"connected"`
	ConnectSeconds   float64 `json:"connect_seconds"`
	ConnectPerSecond float64 `json:"connect_per_second"`

	// Stalled is how many extra subscribers connected and then never
	// read (Config.Stalled); they are in no other figure.
	// StalledConnected counts those that got their response head,
	// StalledCutOff those whose stream the hub had ended by the end of
	// the run (a slow consumer cut off).
	Stalled          int    `json:"stalled,omitempty"`
	StalledConnected uint64 `json:"stalled_connected,omitempty"`
	StalledCutOff    uint64 `json:"stalled_cut_off,omitempty"`

	// Published counts acknowledged publishes over PublishSeconds;
	// PublishLatency is from sending a publish to its acknowledgement.
	Published          uint64     `json:"published"`
	PublishErrors      uint64     `json:"publish_errors"`
	PublishSeconds     float64    `json:"publish_seconds"`
	PublishesPerSecond float64    `json:"publishes_per_second"`
	PublishLatency     Summary    `json:"publish_latency"`
	PublishHistogram   *Histogram `json:"publish_histogram,omitempty"`

	// Delivered counts events received by subscribers; the rate is over
	// the time from the first publish to the last delivery. Latency is
	// from publish to receipt.
	Delivered           uint64     `json:"delivered"`
	DeliveriesPerSecond float64    `json:"deliveries_per_second"`
	Latency             Summary    `json:"latency"`
	LatencyHistogram    *Histogram `json:"latency_histogram,omitempty"`

	// Lost counts expected events (acknowledged publishes on a
	// subscriber's topics) it never received; Duplicated those received
	// twice; Extra events received beyond the acknowledged ones (a
	// publish that failed but was delivered).
	Lost          uint64 `json:"lost"`
	Duplicated    uint64 `json:"duplicated"`
	Late          uint64 `json:"late"`
	Extra         uint64 `json:"extra"`
	Incomplete    int    `json:"incomplete_subscribers"`
	Disconnects   uint64 `json:"disconnects"`
	Reconnects    uint64 `json:"reconnects"`
	ConnectErrors uint64 `json:"connect_errors"`
	// Refused counts the attempts to open a stream that the hub refused
	// for a while (draining, a stream limit, its store down, or nginx
	// finding no hub), in either form: 429 or 503, or the 200 event
	// stream holding only a ": refused:" comment. They are not counted
	// as connect errors or disconnects; the subscriber tries again.
	Refused   uint64 `json:"refused"`
	Other     uint64 `json:"other_events"`
	Foreign   uint64 `json:"foreign_events"`
	LastError string `json:"last_error,omitempty"`

	Server *ServerStats `json:"server,omitempty"`
	Client ClientStats  `json:"client"`

	Timeline []Point `json:"timeline"`

	Ramp                          []RampStep   `json:"ramp,omitempty"`
	SaturationDeliveriesPerSecond float64      `json:"saturation_deliveries_per_second,omitempty"`
	Storm                         *StormResult `json:"storm,omitempty"`
}

// Params are the parameters of a run.
type Params struct {
	Topics        int     `json:"topics"`
	SharedPercent int     `json:"shared_percent,omitempty"`
	Rate          float64 `json:"rate"`
	Duration      string  `json:"duration"`
	PayloadSize   int     `json:"payload_size"`
	Publishers    int     `json:"publishers"`
	Workers       int     `json:"workers"`
	SourceIPs     int     `json:"source_ips"`
}

// ServerStats are the hub process's costs, read from /proc.
type ServerStats struct {
	PID                    int     `json:"pid"`
	RSSBefore              int64   `json:"rss_before"`
	RSSAfter               int64   `json:"rss_after"` // after connecting and settling
	RSSPerSubscriber       float64 `json:"rss_per_subscriber"`
	RSSEnd                 int64   `json:"rss_end"`
	CPUSeconds             float64 `json:"cpu_seconds"` // while measuring
	CPUPerMillionDelivered float64 `json:"cpu_seconds_per_million_deliveries,omitempty"`
	CPUPerMillionPublished float64 `json:"cpu_seconds_per_million_publishes,omitempty"`
}

// ClientStats are the load tool's own costs: coordinator and workers.
type ClientStats struct {
	Processes              int     `json:"processes"`
	CPUSeconds             float64 `json:"cpu_seconds"` // while measuring
	CPUPerMillionDelivered float64 `json:"cpu_seconds_per_million_deliveries,omitempty"`
	CPUPerMillionPublished float64 `json:"cpu_seconds_per_million_publishes,omitempty"` // when nothing is delivered
	RSSBytes               int64   `json:"rss_bytes"`
	RSSPerSubscriber       float64 `json:"rss_per_subscriber,omitempty"`
}

// Point is one second of a run.
type Point struct {
	T         float64 `json:"t"` // seconds since the subscribers started connecting
	Connected uint64  `json:"connected"`
	Published float64 `json:"published_per_second"`
	Delivered float64 `json:"delivered_per_second"`
	P50       float64 `json:"p50_ms"`
	P99       float64 `json:"p99_ms"`
}

// RampStep is one rate of a ramp.
type RampStep struct {
	Rate                float64 `json:"rate"`
	PublishesPerSecond  float64 `json:"publishes_per_second"`
	DeliveriesPerSecond float64 `json:"deliveries_per_second"`
	Latency             Summary `json:"latency"`
	Saturated           string  `json:"saturated,omitempty"` // why the ramp stopped here
}

// StormResult is what a resume storm measured.
type StormResult struct {
	Behind uint64 `json:"behind"`
	// Seconds is the time from the storm until every subscriber was live
	// again (had received the last event published before it), or until
	// the storm timeout when LiveAgain < Subscribers.
	Seconds   float64 `json:"seconds"`
	LiveAgain uint64  `json:"live_again"`
	// CatchUp is the distribution of each subscriber's time to be live
	// again.
	CatchUp Summary `json:"catch_up"`
}
