/**
 * Payload decoders for `raftwal wal dump`: how the data of an application's log entry
 * (ENTRY_NORMAL) is shown. The storage engine knows only bytes; the application knows
 * what they mean, so it registers a decoder, and the dump shows what a decoder makes of
 * each entry (falling back to a text or hex preview when none recognises it).
 *
 * The `raftwal` command registers the KV service's decoder ("kv", kv-payload-decoder.ts).
 * An application embedding raftwal registers its own and runs the CLI in its process:
 *
 *   import { registerPayloadDecoder, runCli } from "raftwal";
 *   registerPayloadDecoder("orders", (data) => {
 *     const order = tryDecodeOrder(data);          // undefined (or a throw): not an order
 *     return order && { text: `order ${order.id} x${order.quantity}`, fields: { id: order.id, quantity: order.quantity } };
 *   });
 *   process.exitCode = await runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr });
 *
 * Decoders are tried newest first, so an application's decoder wins over the built-in one.
 */

/** What a decoder makes of one entry's data. */
export interface PayloadDescription {
  /** One line for the text dump, e.g. `put "user/1" = "alice" (client "c1", seq 4)`. */
  text: string;
  /** The same as JSON-serialisable fields, for `dump --json` (under `decoded`, with `decoder`). */
  fields: Record<string, unknown>;
}

/**
 * Describes an entry's data, or returns undefined (or throws) when the bytes are not of its
 * kind. It must not keep `data`: the dump reuses nothing, but decoders should not rely on it.
 */
export type PayloadDecoder = (data: Uint8Array) => PayloadDescription | undefined;

/** A description together with the name of the decoder that made it. */
export interface DecodedPayload extends PayloadDescription {
  decoder: string;
}

const decoders = new Map<string, PayloadDecoder>();

/** Registers (or replaces) the decoder called `name`. It is tried before every decoder registered earlier. */
export function registerPayloadDecoder(name: string, decode: PayloadDecoder): void {
  if (typeof name !== "string" || name.length === 0) throw new TypeError("a payload decoder needs a non-empty name");
  if (typeof decode !== "function") throw new TypeError(`payload decoder ${name} is not a function`);
  decoders.delete(name); // re-registering moves it to the front
  decoders.set(name, decode);
}

/** Removes the decoder called `name`; returns whether there was one. */
export function unregisterPayloadDecoder(name: string): boolean {
  return decoders.delete(name);
}

/** Names of the registered decoders, in the order they are tried. */
export function payloadDecoderNames(): string[] {
  return [...decoders.keys()].reverse();
}

/** The first description a registered decoder gives of `data` (newest decoder first), if any. */
export function decodePayload(data: Uint8Array): DecodedPayload | undefined {
  for (const name of payloadDecoderNames()) {
    let description: PayloadDescription | undefined;
    try {
      description = decoders.get(name)!(data);
    } catch {
      description = undefined; // not this decoder's kind of payload
    }
    if (description) return { decoder: name, text: description.text, fields: description.fields };
  }
  return undefined;
}
