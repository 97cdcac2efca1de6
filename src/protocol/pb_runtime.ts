/**
 * Configures the protobufjs runtime before any generated code loads: the
 * generated module computes its field defaults (empty bytes) at load time,
 * so this must be imported first.
 *
 * Under Deno, protobufjs finds Node's Buffer and the "long" package. Both
 * are turned off: uint64 then decodes to a plain number (counters stay far
 * below 2^53), and bytes fields are plain Uint8Array, as users and
 * `assert.deepStrictEqual` expect, instead of Buffer subclasses.
 *
 * @module
 */
import $protobuf from "protobufjs/minimal";

$protobuf.util.Long = null as unknown as typeof $protobuf.util.Long;
$protobuf.util.Buffer = null as unknown as typeof $protobuf.util.Buffer;
$protobuf.configure();
