/**
 * The suite's chart: hand-written SVG, no dependencies. One block per
 * scenario, one row per server in it: an ops/s bar on the left and a p99
 * latency bar on the right, each labelled with its value. Each server keeps
 * its colour across scenarios.
 *
 * @module
 */

/** One bar pair of the chart. */
export interface ChartRow {
  /** Scenario name, e.g. `50 conns x pipeline 16`. */
  scenario: string;
  /** Server under test, e.g. `inline/main`; names starting with `echo` are drawn grey. */
  target: string;
  /** Throughput. */
  opsPerSec: number;
  /** 99th percentile latency in ms. */
  p99Ms: number;
}

const PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1"];
/** The ceiling gets greys so that it reads as a reference, not a contender. */
const ECHO_GREYS = ["#9d9d9d", "#6f6f6f", "#c4c4c4"];

const ROW_H = 22;
/** Room for a scenario's heading above its rows. */
const HEAD_H = 24;
/** Room for a scenario's axis labels below its rows, plus the gap to the next one. */
const FOOT_H = 40;
const LABEL_W = 150;
const PANEL_W = 360;
const PANEL_GAP = 80;
const TOP = 58;
const LEFT = 12;

/** Escapes text for an XML text node or attribute. */
function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;").replace(/'/g, "&apos;");
}

/**
 * An axis for values up to `v`: a round tick step (1, 2 or 5 times a power
 * of ten) giving at most 5 steps, and the axis end at a whole step.
 */
function axis(v: number): { step: number; max: number } {
  if (!(v > 0)) return { step: 0.25, max: 1 };
  const raw = v / 5;
  const p = 10 ** Math.floor(Math.log10(raw));
  let step = 10 * p;
  for (const m of [1, 2, 5]) {
    if (m * p >= raw) {
      step = m * p;
      break;
    }
  }
  return { step, max: Math.ceil(v / step - 1e-9) * step };
}

function fmtOps(v: number): string {
  if (v >= 1e6) return `${+(v / 1e6).toFixed(2)}M`;
  if (v >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  return v.toFixed(0);
}

function fmtMs(v: number): string {
  return v >= 10 ? v.toFixed(1) : v >= 1 ? v.toFixed(2) : v.toFixed(3);
}

function fmtTick(v: number): string {
  return String(+v.toPrecision(6));
}

/**
 * Renders the chart of `rows` as a standalone SVG document: one block per
 * scenario (in order of first appearance), each with its own axes, since
 * the scenarios differ by orders of magnitude; within a block, one row per
 * server in the order given.
 *
 * @example
 * ```ts
 * import { renderChart } from "./svg.ts";
 * const svg = renderChart([
 *   { scenario: "1 conn", target: "echo", opsPerSec: 20000, p99Ms: 0.1 },
 *   { scenario: "1 conn", target: "inline/main", opsPerSec: 15000, p99Ms: 0.2 },
 * ], "evkv benchmark");
 * await Deno.writeTextFile("chart.svg", svg);
 * ```
 */
export function renderChart(rows: ChartRow[], title: string): string {
  const colours = new Map<string, string>();
  let next = 0;
  let nextGrey = 0;
  for (const r of rows) {
    if (colours.has(r.target)) continue;
    colours.set(
      r.target,
      r.target.startsWith("echo")
        ? ECHO_GREYS[nextGrey++ % ECHO_GREYS.length]
        : PALETTE[next++ % PALETTE.length],
    );
  }
  const groups = new Map<string, ChartRow[]>();
  for (const r of rows) {
    const g = groups.get(r.scenario);
    if (g) g.push(r);
    else groups.set(r.scenario, [r]);
  }
  const opsX = LEFT + LABEL_W;
  const p99X = opsX + PANEL_W + PANEL_GAP;
  const width = p99X + PANEL_W + 60;
  let height = TOP;
  for (const g of groups.values()) height += HEAD_H + g.length * ROW_H + FOOT_H;

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
      `viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
  );
  out.push(`<title>${esc(title)}</title>`);
  out.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text x="${LEFT}" y="22" font-size="16" font-weight="bold">${esc(title)}</text>`);
  out.push(
    `<text x="${opsX}" y="44" font-weight="bold">throughput (ops/s, higher is better)</text>`,
  );
  out.push(
    `<text x="${p99X}" y="44" font-weight="bold">p99 latency (ms, lower is better)</text>`,
  );
  let y = TOP;
  for (const [scenario, g] of groups) {
    out.push(
      `<text x="${LEFT}" y="${y + 16}" font-size="13" font-weight="bold">${esc(scenario)}</text>`,
    );
    y += HEAD_H;
    const y0 = y;
    const y1 = y + g.length * ROW_H;
    const opsAxis = axis(Math.max(0, ...g.map((r) => r.opsPerSec)));
    const p99Axis = axis(Math.max(0, ...g.map((r) => r.p99Ms)));
    for (const [x0, ax] of [[opsX, opsAxis], [p99X, p99Axis]] as const) {
      const steps = Math.round(ax.max / ax.step);
      for (let i = 0; i <= steps; i++) {
        const x = (x0 + (PANEL_W * i) / steps).toFixed(1);
        const v = ax.step * i;
        out.push(
          `<line x1="${x}" y1="${y0}" x2="${x}" y2="${y1}" stroke="#e3e3e3" stroke-width="1"/>`,
        );
        out.push(
          `<text x="${x}" y="${y1 + 14}" text-anchor="middle" fill="#666666" font-size="10">${
            esc(x0 === opsX ? fmtOps(v) : fmtTick(v))
          }</text>`,
        );
      }
    }
    for (const r of g) {
      const colour = colours.get(r.target)!;
      const opsW = (PANEL_W * Math.max(0, r.opsPerSec)) / opsAxis.max;
      const p99W = (PANEL_W * Math.max(0, r.p99Ms)) / p99Axis.max;
      const what = `${esc(scenario)}, ${esc(r.target)}`;
      out.push(`<text x="${opsX - 8}" y="${y + 15}" text-anchor="end">${esc(r.target)}</text>`);
      out.push(
        `<rect class="bar ops" x="${opsX}" y="${y + 3}" width="${opsW.toFixed(1)}" ` +
          `height="${ROW_H - 6}" fill="${colour}"><title>${what}: ${
            esc(fmtOps(r.opsPerSec))
          } ops/s</title></rect>`,
      );
      out.push(
        `<text x="${(opsX + opsW + 4).toFixed(1)}" y="${y + 15}">${
          esc(fmtOps(r.opsPerSec))
        }</text>`,
      );
      out.push(
        `<rect class="bar p99" x="${p99X}" y="${y + 3}" width="${p99W.toFixed(1)}" ` +
          `height="${ROW_H - 6}" fill="${colour}"><title>${what}: p99 ${
            esc(fmtMs(r.p99Ms))
          } ms</title></rect>`,
      );
      out.push(
        `<text x="${(p99X + p99W + 4).toFixed(1)}" y="${y + 15}">${esc(fmtMs(r.p99Ms))}</text>`,
      );
      y += ROW_H;
    }
    y += FOOT_H;
  }
  out.push("</svg>");
  return out.join("\n") + "\n";
}
