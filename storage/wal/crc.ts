/**
 * CRC-32 as used by every checksum of the WAL format.
 *
 * Polynomial: the IEEE 802.3 / zlib / PNG CRC-32, 0x04C11DB7, processed bit-reflected
 * (0xEDB88320), initial value 0xFFFFFFFF, final XOR 0xFFFFFFFF. "123456789" -> 0xCBF43926.
 *
 * Three implementations compute exactly these values, and all accept a running value, so a
 * checksum can span two buffers. From the fastest on a WAL record of 1 KiB and more:
 * - `@node-rs/crc32` (a prebuilt native module, carry-less multiplication): about 2x
 *   `zlib.crc32` from 600 B up (1 KiB 0.21 us against 0.36, 16 KiB 1.4 us against 3.1), when
 *   its binary loads on this platform;
 * - Node's `zlib.crc32` (Node >= 20.15 / 22.2), table-driven, when this Node has it;
 * - the `crc-32` package, plain JavaScript: the fastest below CRC32_NATIVE_THRESHOLD_BYTES,
 *   where a native call's fixed cost dominates, and the fallback for everything.
 */
import { createRequire } from "node:module";
import zlib from "node:zlib";
import CRC32 from "crc-32";

type Crc32Function = (data: Uint8Array, running?: number) => number;
type NativeCrc32 = (data: Uint8Array, running: number) => number;

/** The `crc-32` package's implementation (returns a signed int; normalised to unsigned). */
export const crc32Package: Crc32Function = (data, running = 0) => CRC32.buf(data, running) >>> 0;

const zlibCrc32 = (zlib as unknown as { crc32?: NativeCrc32 }).crc32;

/** Node's built-in implementation, when this Node has one. */
export const crc32Zlib: Crc32Function | undefined = zlibCrc32 ? (data, running = 0) => zlibCrc32(data, running) : undefined;

const CHECK_INPUT = new TextEncoder().encode("123456789");
const CHECK_VALUE = 0xcbf43926;

/**
 * `@node-rs/crc32`'s function, or undefined when its binary does not load here (a platform
 * without a prebuilt binary, an install without optional dependencies) or gives wrong
 * values: the WAL then runs on the next implementation, with the same checksums.
 * `requireModule` is the seam for tests.
 */
export function loadNodeRsCrc32(requireModule: (id: string) => unknown = createRequire(import.meta.url)): NativeCrc32 | undefined {
  try {
    const crc32 = (requireModule("@node-rs/crc32") as { crc32?: NativeCrc32 } | undefined)?.crc32;
    if (typeof crc32 !== "function") return undefined;
    // Trusted only once it gives the check value, also continuing from a running value.
    const chained = crc32(CHECK_INPUT.subarray(4), crc32(CHECK_INPUT.subarray(0, 4), 0));
    return crc32(CHECK_INPUT, 0) === CHECK_VALUE && chained === CHECK_VALUE ? crc32 : undefined;
  } catch {
    return undefined;
  }
}

const nodeRsCrc32 = loadNodeRsCrc32();

/** `@node-rs/crc32`'s implementation, when its binary loads on this platform. */
export const crc32NodeRs: Crc32Function | undefined = nodeRsCrc32 ? (data, running = 0) => nodeRsCrc32(data, running) : undefined;

/**
 * Below this many bytes the `crc-32` package (plain JavaScript, no native call) is faster
 * than a native call, whose fixed cost (~0.15-0.2 us here) dominates small records; above
 * it native throughput wins. Measured: 40-byte inputs 0.07-0.10 us (crc-32) against 0.16-0.20
 * (zlib) and 0.21-0.26 (@node-rs/crc32); 300 bytes about equal.
 */
export const CRC32_NATIVE_THRESHOLD_BYTES = 256;

/** The fastest native implementation that loads here, and its name; undefined when neither does. */
const native: { crc32: NativeCrc32; name: string } | undefined = nodeRsCrc32
  ? { crc32: nodeRsCrc32, name: "@node-rs/crc32" }
  : zlibCrc32
    ? { crc32: zlibCrc32, name: "zlib" }
    : undefined;

/** CRC-32 (IEEE, reflected 0xEDB88320) of `data`, continuing from `running` (0 to start). Unsigned. */
export const crc32: Crc32Function = native
  ? (data, running = 0) => (data.length < CRC32_NATIVE_THRESHOLD_BYTES ? crc32Package(data, running) : native.crc32(data, running))
  : crc32Package;

/** Which implementation `crc32` is (for the benchmark report). */
export const crc32Implementation: string = native ? `${native.name} (crc-32 below ${CRC32_NATIVE_THRESHOLD_BYTES} B)` : "crc-32";
