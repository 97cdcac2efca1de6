/**
 * Paired rounds for comparisons on a VM whose speed drifts: two sides
 * measured in turns, the first side alternating round by round, and each
 * judged on the median of the per-round ratios.
 *
 * @module
 */

/**
 * Which side goes first in `round` and which second, as indices: 0 then 1
 * in even rounds, 1 then 0 in odd ones (A B, B A, A B, ...).
 *
 * @example
 * ```ts
 * for (const i of inTurn(1)) console.log(["base", "this"][i]); // this, base
 * ```
 */
export function inTurn(round: number): [number, number] {
  return round % 2 === 0 ? [0, 1] : [1, 0];
}

/**
 * Runs `measure` on both sides `rounds` times, in {@link inTurn} order, so
 * that the machine's drift over the run falls on both sides alike; returns
 * each round's pair in side order, and hands each to `done` as it completes
 * (for progress lines).
 *
 * @example
 * ```ts ignore
 * const pairs = await alternate(["base", "this"], 4, (side) => measureOne(side));
 * const ratios = pairs.map(([a, b]) => b.opsPerSec / a.opsPerSec);
 * ```
 */
export async function alternate<S, R>(
  sides: readonly [S, S],
  rounds: number,
  measure: (side: S, round: number) => Promise<R>,
  done?: (pair: [R, R], round: number) => void,
): Promise<[R, R][]> {
  const out: [R, R][] = [];
  for (let round = 0; round < rounds; round++) {
    const [first, second] = inTurn(round);
    const results: R[] = [];
    results[first] = await measure(sides[first], round);
    results[second] = await measure(sides[second], round);
    const pair: [R, R] = [results[0], results[1]];
    done?.(pair, round);
    out.push(pair);
  }
  return out;
}

/**
 * The median of `xs` (the mean of the middle two for an even count; NaN
 * for none).
 *
 * @example
 * ```ts
 * median([3, 1, 2]); // 2
 * ```
 */
export function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
