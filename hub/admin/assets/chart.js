// A bar chart in SVG: one bar per bucket, its count and time in a tooltip. No library needed.

const NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

/** buckets: [{start, <key>: n}]; returns an <svg> whose bars are scaled to the largest count. */
export function barChart(buckets, key, label) {
  const width = 600, height = 70, gap = 1;
  const max = Math.max(1, ...buckets.map((b) => b[key]));
  const w = width / buckets.length;
  const total = buckets.reduce((n, b) => n + b[key], 0);
  const chart = svg("svg", {viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none", role: "img",
    "aria-label": `${label}: ${total} in ${buckets.length} buckets, at most ${max === 1 && !total ? 0 : max} in one`});
  chart.append(svg("line", {x1: 0, x2: width, y1: height - 0.5, y2: height - 0.5, stroke: "#dde1e8"}));
  buckets.forEach((b, i) => {
    const n = b[key];
    if (!n) return;
    const barHeight = Math.max(2, (n / max) * (height - 4));
    const rect = svg("rect", {class: "bar", x: i * w + gap / 2, y: height - barHeight, width: Math.max(w - gap, 1), height: barHeight, "data-count": n});
    const title = svg("title", {});
    title.textContent = `${new Date(b.start).toLocaleTimeString(undefined, {hour: "2-digit", minute: "2-digit"})}: ${n} ${label}`;
    rect.append(title);
    chart.append(rect);
  });
  return chart;
}
