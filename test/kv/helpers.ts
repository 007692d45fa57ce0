import type { Entry } from "../../src/proto/schema.js";
import { encodeCommand, type KvCommand } from "../../src/kv/command.js";

export const text = (value: string): Uint8Array => new TextEncoder().encode(value);
export const str = (value: Uint8Array | undefined): string | undefined => (value === undefined ? undefined : new TextDecoder().decode(value));

export function entry(index: number, command: KvCommand, term = 1): Entry {
  return { term, index, type: 0, data: encodeCommand(command) };
}

export function put(clientId: string, seq: number, key: string, value: string): KvCommand {
  return { op: "put", clientId, seq, key, value: text(value) };
}

export function del(clientId: string, seq: number, key: string): KvCommand {
  return { op: "delete", clientId, seq, key };
}

export function cas(clientId: string, seq: number, key: string, expect: string | null, value: string): KvCommand {
  return { op: "cas", clientId, seq, key, expect: expect === null ? null : text(expect), value: text(value) };
}

export function get(key: string): KvCommand {
  return { op: "get", key };
}

export async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const chunk of chunks) out.push(chunk);
  return out;
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Re-cuts a byte stream into pieces of the given sizes (cycled). */
export function recut(bytes: Uint8Array, sizes: number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let offset = 0;
  let i = 0;
  while (offset < bytes.length) {
    const n = Math.max(1, sizes[i++ % sizes.length]);
    out.push(bytes.slice(offset, offset + n));
    offset += n;
  }
  return out;
}
