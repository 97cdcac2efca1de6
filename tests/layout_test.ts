/**
 * The module layout holds: no import cycle (type-only imports included),
 * the generic server under src/server/ knows nothing of the KV service,
 * the RESP door, the client or the load generator, and only the load
 * generator itself and the client CLI reach src/loadgen.
 *
 * The graph comes from a small reader of the source text (static imports
 * and re-exports, `import type`, dynamic `import("literal")` and
 * `new URL("literal", import.meta.url)`), so it needs neither the network
 * nor `deno info`, and it sees the module URLs that workers and codecs are
 * loaded from, which a type checker does not.
 */
import assert from "node:assert/strict";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/**
 * `source` with comments blanked out (so a JSDoc example's import is not an
 * edge), strings and regex literals kept. Blanking keeps line numbers.
 */
export function stripComments(source: string): string {
  let out = "";
  let i = 0;
  /** The last character outside a comment that is not white space: tells a regex from a division. */
  let last = "";
  while (i < source.length) {
    const c = source[i];
    const next = source[i + 1];
    if (c === "/" && next === "/") {
      const end = source.indexOf("\n", i);
      const stop = end === -1 ? source.length : end;
      out += " ".repeat(stop - i);
      i = stop;
    } else if (c === "/" && next === "*") {
      const end = source.indexOf("*/", i + 2);
      const stop = end === -1 ? source.length : end + 2;
      out += source.slice(i, stop).replace(/[^\n]/g, " ");
      i = stop;
    } else if (c === '"' || c === "'" || c === "`") {
      const stop = skipQuoted(source, i, c);
      out += source.slice(i, stop);
      last = c;
      i = stop;
    } else if (c === "/" && (last === "" || "(,=:[!&|?{};+-*%<>~^".includes(last))) {
      const stop = skipRegex(source, i);
      out += source.slice(i, stop);
      last = "/";
      i = stop;
    } else {
      out += c;
      if (!/\s/.test(c)) last = c;
      i++;
    }
  }
  return out;
}

/** Index just past the string that opens at `start` with `quote`. */
function skipQuoted(source: string, start: number, quote: string): number {
  let i = start + 1;
  while (i < source.length && source[i] !== quote) {
    if (source[i] === "\\") i++;
    else if (quote === "`" && source[i] === "$" && source[i + 1] === "{") {
      // A substitution may hold strings with backticks of its own.
      let depth = 1;
      i += 2;
      while (i < source.length && depth > 0) {
        const c = source[i];
        if (c === "{") depth++;
        else if (c === "}") depth--;
        else if (c === '"' || c === "'" || c === "`") i = skipQuoted(source, i, c) - 1;
        i++;
      }
      continue;
    }
    i++;
  }
  return i + 1;
}

/** Index just past the regex literal that opens at `start`. */
function skipRegex(source: string, start: number): number {
  let i = start + 1;
  let inClass = false;
  while (i < source.length && source[i] !== "\n") {
    const c = source[i];
    if (c === "\\") i++;
    else if (c === "[") inClass = true;
    else if (c === "]") inClass = false;
    else if (c === "/" && !inClass) return i + 1;
    i++;
  }
  return i;
}

/** How one module names another. */
export type EdgeKind = "import" | "dynamic" | "url";

/** One specifier in a module's text. */
export interface Reference {
  specifier: string;
  kind: EdgeKind;
}

const STATIC_FROM = /(?:^|[;}\n])\s*(?:import|export)\b[^"'`;]*?\bfrom\s*["']([^"']+)["']/g;
const SIDE_EFFECT = /(?:^|[;}\n])\s*import\s*["']([^"']+)["']/g;
const DYNAMIC = /\bimport\s*\(\s*["'`]([^"'`$]+)["'`]\s*\)/g;
const MODULE_URL = /\bnew\s+URL\(\s*["'`]([^"'`$]+)["'`]\s*,\s*import\.meta\.url\s*\)/g;

/**
 * Every module specifier in `source`: static imports and re-exports
 * (type-only ones too), dynamic imports of a literal, and module URLs made
 * from `import.meta.url`.
 */
export function references(source: string): Reference[] {
  const code = stripComments(source);
  const found: Reference[] = [];
  for (
    const [re, kind] of [
      [STATIC_FROM, "import"],
      [SIDE_EFFECT, "import"],
      [DYNAMIC, "dynamic"],
      [MODULE_URL, "url"],
    ] as const
  ) {
    for (const m of code.matchAll(re)) found.push({ specifier: m[1], kind });
  }
  return found;
}

/** A module file, relative to the repository root with `/` separators. */
type Path = string;

/** Module → the local modules it names, each with how. */
type Graph = Map<Path, { to: Path; kind: EdgeKind }[]>;

const isModule = (path: string) => /\.(?:ts|js|mjs)$/.test(path);

async function filesUnder(dir: string): Promise<Path[]> {
  const found: Path[] = [];
  for await (const entry of Deno.readDir(join(ROOT, dir))) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) found.push(...await filesUnder(path));
    else if (entry.isFile && path.endsWith(".ts")) found.push(path);
  }
  return found;
}

/** The entry points: mod.ts and what deno.json exports, besides src/. */
async function entryPoints(): Promise<Path[]> {
  const config = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json")));
  const exports: Record<string, string> = typeof config.exports === "string"
    ? { ".": config.exports }
    : config.exports ?? {};
  return ["mod.ts", ...Object.values(exports)].map((p) => relative(ROOT, resolve(ROOT, p)));
}

/**
 * The graph of every .ts file under src/, the entry points and every local
 * module they reach. Specifiers that are not relative (npm:, node:, a bare
 * name from the import map) are not edges: they leave the repository.
 */
async function buildGraph(): Promise<Graph> {
  const graph: Graph = new Map();
  const queue: Path[] = [...new Set([...await filesUnder("src"), ...await entryPoints()])];
  while (queue.length > 0) {
    const path = queue.pop()!;
    if (graph.has(path)) continue;
    const edges: { to: Path; kind: EdgeKind }[] = [];
    graph.set(path, edges);
    const source = await Deno.readTextFile(join(ROOT, path));
    for (const { specifier, kind } of references(source)) {
      if (!specifier.startsWith("./") && !specifier.startsWith("../")) continue;
      const to = relative(ROOT, resolve(ROOT, dirname(path), specifier)).split("\\").join("/");
      if (!isModule(to)) continue;
      edges.push({ to, kind });
      queue.push(to);
    }
  }
  return graph;
}

/**
 * One cycle in `graph`, as its files in import order with the first file
 * repeated at the end, or null when there is none.
 */
export function findCycle(graph: ReadonlyMap<Path, readonly { to: Path }[]>): Path[] | null {
  const done = new Set<Path>();
  const onPath = new Map<Path, number>();
  const path: Path[] = [];
  const visit = (node: Path): Path[] | null => {
    onPath.set(node, path.length);
    path.push(node);
    for (const { to } of graph.get(node) ?? []) {
      const at = onPath.get(to);
      if (at !== undefined) return [...path.slice(at), to];
      if (done.has(to)) continue;
      const cycle = visit(to);
      if (cycle) return cycle;
    }
    path.pop();
    onPath.delete(node);
    done.add(node);
    return null;
  };
  for (const node of [...graph.keys()].sort()) {
    if (done.has(node)) continue;
    const cycle = visit(node);
    if (cycle) return cycle;
  }
  return null;
}

/** Each edge from a file matching `from` to a file matching `to`, as "a -> b (kind)". */
function edgesBetween(
  graph: Graph,
  from: (path: Path) => boolean,
  to: (path: Path) => boolean,
): string[] {
  const found: string[] = [];
  for (const [path, edges] of graph) {
    if (!from(path)) continue;
    for (const e of edges) if (to(e.to)) found.push(`${path} -> ${e.to} (${e.kind})`);
  }
  return found.sort();
}

const under = (...dirs: string[]) => (path: Path) => dirs.some((d) => path.startsWith(`${d}/`));

const graph = await buildGraph();

Deno.test("the reader sees every kind of import and ignores the ones in comments", () => {
  const source = [
    `/** @example import { a } from "./in_a_comment.ts"; */`,
    `import { b } from "./static.ts";`,
    `import type {`,
    `  C,`,
    `} from "../type_only.ts";`,
    `export * from "./reexport.ts";`,
    `import "./side_effect.ts";`,
    `const re = /"/; // import "./after_a_regex.ts"`,
    "const t = `${'`'}`;",
    `const m = await import("./dynamic.ts");`,
    `const w = new URL("./worker.ts", import.meta.url);`,
    `const n = "import { x } from './in_a_string.ts'";`,
  ].join("\n");
  assert.deepEqual(
    references(source).map((r) => `${r.kind} ${r.specifier}`).sort(),
    [
      "dynamic ./dynamic.ts",
      "import ../type_only.ts",
      "import ./reexport.ts",
      "import ./side_effect.ts",
      "import ./static.ts",
      "url ./worker.ts",
    ],
  );
});

Deno.test("the cycle finder names a cycle's files in import order", () => {
  const g = new Map([
    ["a.ts", [{ to: "b.ts" }]],
    ["b.ts", [{ to: "c.ts" }]],
    ["c.ts", [{ to: "b.ts" }]],
  ]);
  assert.deepEqual(findCycle(g), ["b.ts", "c.ts", "b.ts"]);
  assert.equal(findCycle(new Map([["a.ts", [{ to: "b.ts" }]]])), null);
});

Deno.test("the reader found the modules it should", () => {
  // Guards the reader itself: a graph that lost its edges would pass every check below.
  assert.ok(graph.has("mod.ts") && graph.has("src/client/mod.ts"));
  assert.ok(graph.get("mod.ts")!.length > 5, "mod.ts re-exports from many modules");
});

Deno.test("no module imports itself through a cycle, type-only imports and module URLs included", () => {
  const cycle = findCycle(graph);
  assert.equal(cycle, null, `import cycle: ${cycle?.join(" -> ")}`);
});

Deno.test("the generic server under src/server imports nothing from the KV service, RESP, the client or the load generator", () => {
  const bad = edgesBetween(
    graph,
    under("src/server"),
    under("src/kv", "src/resp", "src/client", "src/loadgen"),
  );
  assert.deepEqual(bad, [], `src/server must stay generic:\n${bad.join("\n")}`);
});

Deno.test("only the load generator itself and the client CLI import src/loadgen", () => {
  const allowed = (path: Path) => under("src/loadgen")(path) || path === "src/client/cli.ts";
  const bad = edgesBetween(graph, (path) => !allowed(path), under("src/loadgen"));
  assert.deepEqual(bad, [], `the load generator is not part of the library:\n${bad.join("\n")}`);
});
