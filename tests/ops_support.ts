/**
 * Test support for the operations tests: a small RESP client, a strict
 * check of Prometheus's text format, and scraping.
 *
 * @module
 */
import assert from "node:assert/strict";
import parsePrometheus from "parse-prometheus-text-format";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A RESP reply as read: strings, numbers, null, arrays, or an error. */
export type RespValue = string | number | null | RespValue[] | { error: string };

/** A RESP connection for tests: one command, one reply. */
export class Resp implements AsyncDisposable {
  #buf = "";
  readonly #conn: Deno.Conn;

  private constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  /** Connects to a RESP port on loopback. */
  static async connect(port: number): Promise<Resp> {
    return new Resp(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  /** Sends a command and reads its reply. */
  async send(...args: string[]): Promise<RespValue> {
    const parts = [`*${args.length}\r\n`];
    for (const a of args) parts.push(`$${encoder.encode(a).length}\r\n${a}\r\n`);
    await this.#conn.write(encoder.encode(parts.join("")));
    return await this.#value();
  }

  async #line(): Promise<string> {
    for (;;) {
      const at = this.#buf.indexOf("\r\n");
      if (at >= 0) {
        const line = this.#buf.slice(0, at);
        this.#buf = this.#buf.slice(at + 2);
        return line;
      }
      await this.#more();
    }
  }

  async #more(): Promise<void> {
    const chunk = new Uint8Array(65536);
    const n = await this.#conn.read(chunk);
    if (n === null) throw new Error("Read RESP reply: the server closed the connection");
    this.#buf += decoder.decode(chunk.subarray(0, n));
  }

  async #value(): Promise<RespValue> {
    const line = await this.#line();
    const rest = line.slice(1);
    switch (line[0]) {
      case "+":
        return rest;
      case "-":
        return { error: rest };
      case ":":
        return Number(rest);
      case "$": {
        const n = Number(rest);
        if (n < 0) return null;
        while (encoder.encode(this.#buf).length < n + 2) await this.#more();
        const s = this.#buf.slice(0, n);
        this.#buf = this.#buf.slice(n + 2);
        return s;
      }
      case "*": {
        const n = Number(rest);
        if (n < 0) return null;
        const items: RespValue[] = [];
        for (let i = 0; i < n; i++) items.push(await this.#value());
        return items;
      }
    }
    throw new Error(`Read RESP reply: unexpected line "${line}"`);
  }

  /** Closes the connection. */
  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.#conn.close();
    } catch {
      // Closed by the server already.
    }
    await Promise.resolve();
  }
}

/** One sample: metric name, labels, value. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A parsed scrape. */
export interface Scrape {
  /** Family name -> type, from `# TYPE`. */
  types: Map<string, string>;
  /** Every sample line. */
  samples: Sample[];
}

const NAME = "[a-zA-Z_:][a-zA-Z0-9_:]*";
const LABEL = `[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"`;
const VALUE = "(?:[+-]?(?:\\d+(?:\\.\\d*)?|\\.\\d+)(?:[eE][+-]?\\d+)?|[+-]Inf|NaN)";
const SAMPLE = new RegExp(`^(${NAME})(?:\\{(${LABEL}(?:,${LABEL})*)?\\})? (${VALUE})$`);

/**
 * Checks `text` line by line against the text exposition format 0.0.4
 * (HELP and TYPE before their samples, one TYPE per family, valid names,
 * labels and values, histogram buckets cumulative and ending in +Inf with
 * _count equal to it), runs it through parse-prometheus-text-format, and
 * returns the samples.
 */
export function parseExposition(text: string): Scrape {
  assert.ok(text.endsWith("\n"), "exposition ends with a newline");
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  const lines = text.slice(0, -1).split("\n");
  for (const [i, line] of lines.entries()) {
    const where = `line ${i + 1}: ${line}`;
    if (line.startsWith("# HELP ")) {
      assert.match(line, new RegExp(`^# HELP ${NAME} \\S`), where);
      continue;
    }
    if (line.startsWith("# TYPE ")) {
      const m = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`)
        .exec(line);
      assert.ok(m, where);
      assert.ok(!types.has(m[1]), `${where}: second TYPE for ${m[1]}`);
      types.set(m[1], m[2]);
      continue;
    }
    const m = SAMPLE.exec(line);
    assert.ok(m, `${where}: not a sample line`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1]] = l[2];
    }
    const family = m[1].replace(/_(bucket|sum|count)$/, "");
    const typed = types.has(m[1]) ? m[1] : family;
    assert.ok(types.has(typed), `${where}: sample before its TYPE`);
    if (types.get(typed) === "counter") assert.match(m[1], /_total$/, `${where}: counter name`);
    samples.push({ name: m[1], labels, value: Number(m[3].replace("Inf", "Infinity")) });
  }
  // Histograms: cumulative buckets, +Inf last and equal to _count.
  for (const [family, type] of types) {
    if (type !== "histogram") continue;
    const series = new Map<string, Sample[]>();
    for (const s of samples.filter((s) => s.name === `${family}_bucket`)) {
      const { le: _le, ...rest } = s.labels;
      const key = JSON.stringify(rest);
      series.set(key, [...(series.get(key) ?? []), s]);
    }
    for (const [key, buckets] of series) {
      for (let i = 1; i < buckets.length; i++) {
        assert.ok(buckets[i].value >= buckets[i - 1].value, `${family}${key}: not cumulative`);
      }
      assert.equal(buckets.at(-1)!.labels.le, "+Inf", `${family}${key}: last bucket is +Inf`);
      const count = samples.find((s) =>
        s.name === `${family}_count` && JSON.stringify(s.labels) === key
      );
      assert.equal(count?.value, buckets.at(-1)!.value, `${family}${key}: _count is +Inf's`);
    }
  }
  // The npm parser must read the same families.
  const parsed = parsePrometheus(text) as { name: string }[];
  assert.deepEqual(new Set(parsed.map((f) => f.name)), new Set(types.keys()));
  return { types, samples };
}

/** GETs `/metrics` and parses it. */
export async function scrape(port: number): Promise<Scrape> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  return parseExposition(await res.text());
}

/** Sum of the samples of `name` whose labels include `labels`. */
export function value(s: Scrape, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  let found = false;
  for (const x of s.samples) {
    if (x.name !== name) continue;
    if (Object.entries(labels).some(([k, v]) => x.labels[k] !== v)) continue;
    sum += x.value;
    found = true;
  }
  return found ? sum : 0;
}
