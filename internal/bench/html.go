package bench

import (
	"bytes"
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// WriteHTML writes a self-contained HTML page (inline SVG, no external
// requests) comparing results: the summary table, the latency
// distribution and the throughput over time.
func WriteHTML(w io.Writer, title string, results ...*Result) error {
	var b strings.Builder
	esc := html.EscapeString
	b.WriteString(`<!doctype html><html><head><meta charset="utf-8"><title>` + esc(title) + `</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:960px}pre{background:#f6f6f6;padding:1em;overflow:auto}
svg{background:#fff;border:1px solid #ddd}text{font:11px system-ui,sans-serif}h2{margin-top:2em}</style></head><body>
<h1>` + esc(title) + `</h1>
`)
	var table bytes.Buffer
	if err := WriteText(&table, results...); err != nil {
		return err
	}
	b.WriteString("<pre>" + esc(table.String()) + "</pre>\n")

	var lat []series
	for i, r := range results {
		h := r.LatencyHistogram
		if h == nil || h.Count() == 0 {
			h = r.PublishHistogram
		}
		if h == nil || h.Count() == 0 {
			continue
		}
		s := series{name: label(r), color: color(i)}
		for _, q := range quantiles {
			s.pts = append(s.pts, [2]float64{nines(q), math.Max(ms(h.Quantile(q)), 0.001)})
		}
		lat = append(lat, s)
	}
	if len(lat) > 0 {
		b.WriteString("<h2>Latency distribution</h2>\n<p>Publish-to-receive latency (publish latency when nothing was received) by percentile.</p>\n")
		var xt []axisTick
		for i, l := range []string{"0%", "90%", "99%", "99.9%", "99.99%", "99.999%", "max"} {
			xt = append(xt, axisTick{float64(i), l})
		}
		b.WriteString(chart(lat, "percentile", "ms (log scale)", xt, true))
	}

	var thr []series
	for i, r := range results {
		s := series{name: label(r), color: color(i)}
		for _, p := range r.Timeline {
			v := p.Delivered
			if r.Subscribers == 0 {
				v = p.Published
			}
			s.pts = append(s.pts, [2]float64{p.T, v})
		}
		if len(s.pts) > 0 {
			thr = append(thr, s)
		}
	}
	if len(thr) > 0 {
		b.WriteString("<h2>Throughput over time</h2>\n<p>Deliveries per second (publishes per second for runs without subscribers), from the start of connecting.</p>\n")
		b.WriteString(chart(thr, "seconds", "per second", nil, false))
	}
	b.WriteString("</body></html>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// quantiles are the points of the latency distribution plot.
var quantiles = []float64{0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999, 0.99999, 1}

// nines maps a quantile to the x axis of a percentile plot: 0.9 is 1,
// 0.99 is 2, and so on; 1 is drawn at 6.
func nines(q float64) float64 {
	if q >= 0.999999 {
		return 6
	}
	return -math.Log10(1 - q)
}

type series struct {
	name, color string
	pts         [][2]float64
}

type axisTick struct {
	v     float64
	label string
}

func color(i int) string {
	palette := []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"}
	return palette[i%len(palette)]
}

// chart draws series as lines in an SVG. Without xTicks, five even ticks
// are drawn. logY draws the y axis in powers of ten.
func chart(ss []series, xLabel, yLabel string, xTicks []axisTick, logY bool) string {
	const W, H, left, right, top, bottom = 900, 360, 70, 20, 20, 50
	pw, ph := float64(W-left-right), float64(H-top-bottom)
	xmin, xmax := math.Inf(1), math.Inf(-1)
	ymin, ymax := math.Inf(1), math.Inf(-1)
	for _, s := range ss {
		for _, p := range s.pts {
			xmin, xmax = math.Min(xmin, p[0]), math.Max(xmax, p[0])
			ymin, ymax = math.Min(ymin, p[1]), math.Max(ymax, p[1])
		}
	}
	if xTicks != nil {
		xmin, xmax = xTicks[0].v, math.Max(xmax, xTicks[len(xTicks)-1].v)
	}
	fy := func(v float64) float64 { return v }
	if logY {
		fy = math.Log10
		ymin, ymax = math.Floor(math.Log10(ymin)), math.Ceil(math.Log10(ymax))
	} else {
		ymin, ymax = 0, niceCeil(ymax)
	}
	if xmax <= xmin {
		xmax = xmin + 1
	}
	if ymax <= ymin {
		ymax = ymin + 1
	}
	px := func(v float64) float64 { return left + (v-xmin)/(xmax-xmin)*pw }
	py := func(v float64) float64 { return top + ph - (fy(v)-ymin)/(ymax-ymin)*ph }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">`+"\n", W, H, W, H)
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.0f" height="%.0f" fill="none" stroke="#999"/>`+"\n", left, top, pw, ph)
	if xTicks == nil {
		for i := range 6 {
			v := xmin + (xmax-xmin)*float64(i)/5
			xTicks = append(xTicks, axisTick{v, fmt.Sprintf("%.0f", v)})
		}
	}
	for _, t := range xTicks {
		x := px(t.v)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%.0f" stroke="#eee"/><text x="%.1f" y="%.0f" text-anchor="middle">%s</text>`+"\n",
			x, top, x, top+ph, x, top+ph+15, html.EscapeString(t.label))
	}
	for i := range 6 {
		v := ymin + (ymax-ymin)*float64(i)/5
		y := top + ph - (v-ymin)/(ymax-ymin)*ph
		lbl := fmt.Sprintf("%.3g", v)
		if logY {
			lbl = fmt.Sprintf("%g", math.Pow(10, v))
		}
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#eee"/><text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n",
			left, y, left+pw, y, left-5, y+4, lbl)
	}
	fmt.Fprintf(&b, `<text x="%.0f" y="%d" text-anchor="middle">%s</text>`+"\n", left+pw/2, H-8, html.EscapeString(xLabel))
	fmt.Fprintf(&b, `<text x="15" y="%.0f" text-anchor="middle" transform="rotate(-90 15 %.0f)">%s</text>`+"\n", top+ph/2, top+ph/2, html.EscapeString(yLabel))
	for i, s := range ss {
		var pts []string
		for _, p := range s.pts {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(p[0]), py(p[1])))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", s.color, strings.Join(pts, " "))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
			left+10, top+10+18*i, s.color, left+28, top+20+18*i, html.EscapeString(s.name))
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}
