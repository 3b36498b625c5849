// A small inline-SVG time-series chart: a line over a filled area, scaled
// to the largest value in its window.

const NS = "http://www.w3.org/2000/svg";

export class Sparkline {
  /**
   * @param {SVGSVGElement} svg an empty <svg> to draw into
   * @param {number} capacity how many points the window holds
   */
  constructor(svg, capacity = 120) {
    this.svg = svg;
    this.capacity = capacity;
    this.values = [];
    this.w = capacity - 1;
    this.h = 40;
    svg.setAttribute("viewBox", `0 0 ${this.w} ${this.h}`);
    svg.setAttribute("preserveAspectRatio", "none");
    this.area = document.createElementNS(NS, "path");
    this.area.setAttribute("class", "area");
    this.line = document.createElementNS(NS, "polyline");
    this.line.setAttribute("class", "line");
    const axis = document.createElementNS(NS, "line");
    axis.setAttribute("class", "axis");
    axis.setAttribute("x1", "0");
    axis.setAttribute("x2", String(this.w));
    axis.setAttribute("y1", String(this.h - 0.5));
    axis.setAttribute("y2", String(this.h - 0.5));
    svg.append(this.area, axis, this.line);
  }

  /** push adds a value (a non-finite one counts as 0) and redraws. */
  push(v) {
    this.values.push(Number.isFinite(v) ? v : 0);
    if (this.values.length > this.capacity) this.values.shift();
    this.draw();
  }

  /** max is the largest value in the window. */
  max() {
    return this.values.reduce((m, v) => Math.max(m, v), 0);
  }

  draw() {
    const n = this.values.length;
    if (n === 0) return;
    const top = Math.max(this.max(), 1) * 1.1;
    const x0 = this.w - (n - 1); // the newest point is at the right edge
    const pts = this.values.map((v, i) => `${(x0 + i).toFixed(1)},${(this.h - (v / top) * (this.h - 2) - 1).toFixed(2)}`);
    this.line.setAttribute("points", pts.join(" "));
    this.area.setAttribute("d", `M${x0},${this.h} L${pts.join(" L")} L${this.w},${this.h} Z`);
    this.svg.dataset.max = String(this.max());
    this.svg.dataset.points = String(n);
  }
}
