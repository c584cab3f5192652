// A uPlot time-series chart as a Preact component: sized to its container, its data replaced on each render.
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import { html } from "./html.js";

const COLORS = ["#2563eb", "#16a34a", "#d97706", "#dc2626", "#7c3aed"];

/**
 * `series`: names of the y series; `data`: [times (s), ...one array per series]. `spark`: a small chart
 * without axes or legend (the overview's). `label`: what a screen reader is told it shows.
 */
export function Chart({ series, data, height = 160, spark = false, label }) {
  const box = useRef(null);
  const plot = useRef(null);
  const key = series.join(",");
  useEffect(() => {
    const el = box.current;
    const opts = {
      width: Math.max(50, el.clientWidth),
      height,
      legend: { show: !spark },
      cursor: { show: !spark },
      axes: spark ? [{ show: false }, { show: false }] : [{}, { size: 50 }],
      // From zero, and at least 0..1: a quiet table draws a flat line at the bottom, not nothing.
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
      series: [
        {},
        ...series.map((name, i) => ({ label: name, stroke: COLORS[i % COLORS.length], width: spark ? 1.5 : 2, points: { show: false } })),
      ],
    };
    plot.current = new uPlot(opts, data, el);
    const resize = new ResizeObserver(() => plot.current?.setSize({ width: Math.max(50, el.clientWidth), height }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
  }, [key, height, spark]);
  useEffect(() => {
    plot.current?.setData(data);
  }, [data]);
  return html`<div class=${spark ? "chart spark" : "chart"} ref=${box} role="img" aria-label=${label}></div>`;
}

/** Points `[{t, a, b}]` → uPlot data for `keys`: times in seconds, then each key's values. */
export function columns(points, keys) {
  return [points.map((p) => p.t / 1000), ...keys.map((k) => points.map((p) => p[k]))];
}
