/**
 * The request target of the KV API, read as the client sent it. `new URL()` would
 * normalise the path (`/kv/a/../b` becomes `/kv/b`, and `%2E%2E` counts as `..` too), so a
 * key would silently become another; the path is taken raw instead, and keys are decoded
 * from it byte for byte. Query parameters are checked against the ones each route takes:
 * a misspelt or badly valued parameter is an error, not silently ignored.
 */
import { RaftwalError } from "../../storage/errors.js";
import { KEY_BYTES_MAX } from "./command.js";
import { KvErrorCode } from "./errors.js";

export interface RequestTarget {
  /** The path as sent (still percent-encoded). */
  rawPath: string;
  query: URLSearchParams;
}

export function requestTarget(url: string | undefined): RequestTarget {
  const text = url ?? "/";
  const mark = text.indexOf("?");
  return mark < 0 ? { rawPath: text, query: new URLSearchParams() } : { rawPath: text.slice(0, mark), query: new URLSearchParams(text.slice(mark + 1)) };
}

function badRequest(message: string): RaftwalError {
  return new RaftwalError(KvErrorCode.BAD_REQUEST, message);
}

/**
 * A key from its raw, percent-encoded form. A `.` or `..` path segment sent unencoded is
 * refused: HTTP clients and proxies rewrite such paths (curl sends `/kv/a/../b` as
 * `/kv/b`), so its meaning would depend on who passed it on. Encoded (`%2E%2E`), it is
 * kept as written: the key `..` is a key like any other.
 */
export function decodeKey(raw: string): string {
  // Only a key with a dot can have a dot segment; only one with a '%' has escapes to decode.
  if (raw.includes(".") && raw.split("/").some((segment) => segment === "." || segment === "..")) {
    throw badRequest("the key has a '.' or '..' path segment, which HTTP clients and proxies rewrite: percent-encode its dots (%2E)");
  }
  let key = raw;
  try {
    if (raw.includes("%")) key = decodeURIComponent(raw);
  } catch {
    throw badRequest("the key is not valid percent-encoded UTF-8");
  }
  if (key.length === 0) throw badRequest("the key is empty");
  checkKeyBytes(key, "key");
  return key;
}

/** A key (or a key prefix) is at most KEY_BYTES_MAX bytes of UTF-8. */
export function checkKeyBytes(text: string, what: string): void {
  if (Buffer.byteLength(text) > KEY_BYTES_MAX) throw badRequest(`the ${what} is longer than ${KEY_BYTES_MAX} bytes`);
}

/** Refuses a query parameter the route does not take. */
export function checkQuery(query: URLSearchParams, allowed: readonly string[], route: string): void {
  for (const name of query.keys()) {
    if (!allowed.includes(name)) {
      const takes = allowed.length > 0 ? `; it takes ${allowed.map((a) => `?${a}`).join(", ")}` : "";
      throw badRequest(`unknown query parameter '${name}' for ${route}${takes}`);
    }
  }
}

/** A boolean parameter: absent is `fallback`; present, it must be `true` or `false`. */
export function booleanParameter(query: URLSearchParams, name: string, fallback = false): boolean {
  const value = query.get(name);
  if (value === null) return fallback;
  if (value === "true") return true;
  if (value === "false") return false;
  throw badRequest(`?${name}=${value}: ${name} must be true or false`);
}

/** A whole-number parameter in [min, max]; absent is `fallback`. */
export function integerParameter(query: URLSearchParams, name: string, range: { min: number; max: number; fallback: number }): number {
  const value = query.get(name);
  if (value === null) return range.fallback;
  const parsed = /^\d{1,15}$/.test(value) ? Number(value) : NaN;
  if (!(parsed >= range.min && parsed <= range.max)) throw badRequest(`?${name}=${value}: ${name} must be a whole number from ${range.min} to ${range.max}`);
  return parsed;
}

/** Encodes a key for a request path so that the server reads it back unchanged (dots too: see decodeKey). */
export function encodeKeyForPath(key: string): string {
  return encodeURIComponent(key).replace(/\./g, "%2E");
}
