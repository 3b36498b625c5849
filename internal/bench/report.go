package bench

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteText writes results side by side as a table, one column per
// result, with the rows that apply to them.
func WriteText(w io.Writer, results ...*Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(name string, f func(r *Result) string) {
		cells := make([]string, len(results))
		any := false
		for i, r := range results {
			if cells[i] = f(r); cells[i] != "" {
				any = true
			}
		}
		if !any {
			return
		}
		fmt.Fprintf(tw, "%s\t%s\t\n", name, strings.Join(cells, "\t"))
	}
	row("", func(r *Result) string { return label(r) })
	row("mode", func(r *Result) string { return r.Mode })
	row("subscribers", func(r *Result) string { return count(uint64(r.Subscribers)) })
	row("stalled subscribers", func(r *Result) string {
		if r.Stalled == 0 {
			return ""
		}
		return fmt.Sprintf("%d (%d connected)", r.Stalled, r.StalledConnected)
	})
	row("stalled: cut off by the hub", func(r *Result) string {
		if r.Stalled == 0 {
			return ""
		}
		return count(r.StalledCutOff)
	})
	row("connect time", func(r *Result) string { return secs(r.ConnectSeconds, r.Subscribers > 0) })
	row("connects/s", func(r *Result) string { return rate(r.ConnectPerSecond) })
	row("published", func(r *Result) string { return countIf(r.Published) })
	row("publishes/s", func(r *Result) string { return rate(r.PublishesPerSecond) })
	row("publish errors", func(r *Result) string { return countIf(r.PublishErrors) })
	pubLat := func(name string, f func(s Summary) float64) {
		row(name, func(r *Result) string {
			if r.PublishLatency.Count == 0 {
				return ""
			}
			return fmtMS(f(r.PublishLatency))
		})
	}
	pubLat("publish p50", func(s Summary) float64 { return s.P50 })
	pubLat("publish p99", func(s Summary) float64 { return s.P99 })
	pubLat("publish max", func(s Summary) float64 { return s.Max })
	row("delivered", func(r *Result) string { return countIf(r.Delivered) })
	row("deliveries/s", func(r *Result) string { return rate(r.DeliveriesPerSecond) })
	lat := func(name string, f func(s Summary) float64) {
		row(name, func(r *Result) string {
			if r.Latency.Count == 0 {
				return ""
			}
			return fmtMS(f(r.Latency))
		})
	}
	lat("latency p50", func(s Summary) float64 { return s.P50 })
	lat("latency p90", func(s Summary) float64 { return s.P90 })
	lat("latency p99", func(s Summary) float64 { return s.P99 })
	lat("latency p99.9", func(s Summary) float64 { return s.P999 })
	lat("latency max", func(s Summary) float64 { return s.Max })
	row("lost", func(r *Result) string { return checked(r, r.Lost) })
	row("duplicated", func(r *Result) string { return checked(r, r.Duplicated) })
	row("unacknowledged but delivered", func(r *Result) string { return countIf(r.Extra) })
	row("disconnects", func(r *Result) string { return countIf(r.Disconnects) })
	row("connect errors", func(r *Result) string { return countIf(r.ConnectErrors) })
	row("refused (retried)", func(r *Result) string { return countIf(r.Refused) })
	row("storm: all live after", func(r *Result) string {
		if r.Storm == nil {
			return ""
		}
		s := fmtMS(r.Storm.CatchUp.Max)
		if r.Storm.LiveAgain < uint64(r.Subscribers) {
			s = fmt.Sprintf("%d/%d live", r.Storm.LiveAgain, r.Subscribers)
		}
		return s
	})
	row("storm: catch-up p50", func(r *Result) string {
		if r.Storm == nil {
			return ""
		}
		return fmtMS(r.Storm.CatchUp.P50)
	})
	row("saturation deliveries/s", func(r *Result) string { return rate(r.SaturationDeliveriesPerSecond) })
	row("hub RSS/subscriber", func(r *Result) string {
		if r.Server == nil || r.Subscribers == 0 {
			return ""
		}
		return bytesIEC(r.Server.RSSPerSubscriber)
	})
	row("hub RSS", func(r *Result) string {
		if r.Server == nil {
			return ""
		}
		return bytesIEC(float64(r.Server.RSSAfter))
	})
	row("hub CPU s/M deliveries", func(r *Result) string {
		if r.Server == nil || r.Server.CPUPerMillionDelivered == 0 {
			return ""
		}
		return fmt.Sprintf("%.2f", r.Server.CPUPerMillionDelivered)
	})
	row("hub CPU s/M publishes", func(r *Result) string {
		if r.Server == nil || r.Server.CPUPerMillionPublished == 0 || r.Delivered > 0 {
			return ""
		}
		return fmt.Sprintf("%.1f", r.Server.CPUPerMillionPublished)
	})
	row("hub CPU s", func(r *Result) string {
		if r.Server == nil {
			return ""
		}
		return fmt.Sprintf("%.2f", r.Server.CPUSeconds)
	})
	row("bench CPU s/M deliveries", func(r *Result) string {
		if r.Client.CPUPerMillionDelivered == 0 {
			return ""
		}
		return fmt.Sprintf("%.2f", r.Client.CPUPerMillionDelivered)
	})
	row("bench CPU s/M publishes", func(r *Result) string {
		if r.Client.CPUPerMillionPublished == 0 {
			return ""
		}
		return fmt.Sprintf("%.1f", r.Client.CPUPerMillionPublished)
	})
	row("bench RSS/subscriber", func(r *Result) string {
		if r.Client.RSSPerSubscriber == 0 {
			return ""
		}
		return bytesIEC(r.Client.RSSPerSubscriber)
	})
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range results {
		if len(r.Ramp) == 0 {
			continue
		}
		fmt.Fprintf(w, "\nramp (%s):\n", label(r))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "events/s\tpublished/s\tdeliveries/s\tp50\tp99\tmax\t\t\n")
		for _, s := range r.Ramp {
			fmt.Fprintf(tw, "%.0f\t%.0f\t%.0f\t%s\t%s\t%s\t  %s\t\n", s.Rate, s.PublishesPerSecond, s.DeliveriesPerSecond,
				fmtMS(s.Latency.P50), fmtMS(s.Latency.P99), fmtMS(s.Latency.Max), s.Saturated)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	for _, r := range results {
		if r.LastError != "" {
			fmt.Fprintf(w, "%s: last error: %s\n", label(r), r.LastError)
		}
	}
	return nil
}

func label(r *Result) string {
	if r.Label != "" {
		return r.Label
	}
	return r.Hub
}

func count(n uint64) string { return fmt.Sprintf("%d", n) }

func countIf(n uint64) string {
	if n == 0 {
		return ""
	}
	return count(n)
}

// checked shows a loss or duplication count where one was measured.
func checked(r *Result, n uint64) string {
	if r.Subscribers == 0 || r.Mode == ModeIdle {
		return ""
	}
	return count(n)
}

func rate(v float64) string {
	if v == 0 {
		return ""
	}
	return fmt.Sprintf("%.0f", v)
}

func secs(v float64, show bool) string {
	if !show {
		return ""
	}
	return fmt.Sprintf("%.2fs", v)
}

func bytesIEC(v float64) string {
	switch {
	case v >= 1<<30 || v <= -(1<<30):
		return fmt.Sprintf("%.2f GiB", v/(1<<30))
	case v >= 1<<20 || v <= -(1<<20):
		return fmt.Sprintf("%.1f MiB", v/(1<<20))
	case v >= 1<<10 || v <= -(1<<10):
		return fmt.Sprintf("%.1f KiB", v/(1<<10))
	default:
		return fmt.Sprintf("%.0f B", v)
	}
}
