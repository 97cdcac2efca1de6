/**
 * The codecs a listener can speak, by name (names cross thread boundaries;
 * codec objects do not).
 *
 * @module
 */
import type { Codec } from "./connection.ts";
import { nativeCodec } from "./native_codec.ts";
import { respCodec } from "../../resp/codec.ts";

/** Codecs by name. */
export const CODECS = {
  /** evkv wire v1. */
  native: nativeCodec,
  /** Redis's RESP2. */
  resp: respCodec,
} as const satisfies Record<string, Codec>;

/** A codec's name. */
export type CodecName = keyof typeof CODECS;
