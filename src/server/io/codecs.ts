/**
 * The codecs a listener can speak, by name (names cross thread boundaries;
 * codec objects do not). Only wire v1 is built in; other protocols (the KV
 * server's RESP door) are modules whose default export is a {@link Codec},
 * named by URL where the server is assembled and loaded by each IO worker,
 * so the generic server imports none of them.
 *
 * @module
 */
import type { Codec } from "./connection.ts";
import { wireCodec } from "./wire_codec.ts";

/** A codec's name: `wire` (wire v1) or a key of {@link loadCodecs}' URLs. */
export type CodecName = string;

/**
 * The built-in codecs and the ones at `urls` (name → module URL whose
 * default export is the codec).
 *
 * @example
 * ```ts
 * const codecs = await loadCodecs({});
 * codecs.wire; // wire v1
 * ```
 */
export async function loadCodecs(urls: Readonly<Record<CodecName, string>>): Promise<
  Record<CodecName, Codec>
> {
  const codecs: Record<CodecName, Codec> = { wire: wireCodec };
  for (const [name, url] of Object.entries(urls)) {
    codecs[name] = (await import(url)).default as Codec;
  }
  return codecs;
}
