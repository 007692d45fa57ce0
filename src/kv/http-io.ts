/**
 * Pieces the KV HTTP API's route modules share (http-api.ts, members-api.ts): JSON
 * answers, bounded request bodies, and redirects to the leader.
 */
import type http from "node:http";
import { RaftwalError } from "../../storage/errors.js";
import { KvErrorCode } from "./errors.js";

export interface ApiAddress {
  host: string;
  port: number;
}

export function json(response: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  response.end(text);
}

/** Sends a request on to the leader's API: a 307 to the same path and query there (see redirectToLeader). */
export type RedirectToLeader = (request: http.IncomingMessage, response: http.ServerResponse, leader: number) => void;

/**
 * Answers `307 Temporary Redirect` to the same path and query on the leader's API (307
 * keeps the method and body), with this API's scheme (every member serves the same);
 * KV_ERR_NO_LEADER (503) when no leader is known or its API address is not.
 */
export function redirectToLeader(
  request: http.IncomingMessage,
  response: http.ServerResponse,
  leader: number,
  apiAddressOf: (id: number) => ApiAddress | undefined,
  scheme: "http" | "https" = "http",
): void {
  const target = leader ? apiAddressOf(leader) : undefined;
  if (!target) throw new RaftwalError(KvErrorCode.NO_LEADER, "no leader is known; retry shortly");
  response.writeHead(307, { location: `${scheme}://${target.host}:${target.port}${request.url ?? "/"}`, "x-raftwal-leader": String(leader) });
  response.end();
}

/** "1,040,384". */
export function formatBytes(bytes: number): string {
  return bytes.toLocaleString("en-US");
}

/**
 * The whole request body; KV_ERR_TOO_LARGE, naming `limit` (what the body is, and its limit
 * in bytes), as soon as the announced length or the bytes received pass it. A body that
 * passes its limit while streaming (no content-length) ends the connection: the rest of it
 * is not read.
 */
export function readBody(request: http.IncomingMessage, limit: { bytesMax: number; what: string }): Promise<Uint8Array> {
  const tooLarge = () => new RaftwalError(KvErrorCode.TOO_LARGE, `${limit.what} is larger than its limit of ${formatBytes(limit.bytesMax)} bytes`);
  if (Number(request.headers["content-length"] ?? 0) > limit.bytesMax) return Promise.reject(tooLarge());
  const chunks: Buffer[] = [];
  let size = 0;
  // A body of one chunk (a small one) is returned as it came, not copied: the callers copy
  // it again into the command they encode, or only parse it.
  return consume(request, (chunk) => {
    size += chunk.length;
    if (size > limit.bytesMax) return tooLarge();
    chunks.push(chunk);
    return undefined;
  }).then(() => (chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size)));
}

/** Reads and discards a body the route does not use. */
export function drain(request: http.IncomingMessage): Promise<void> {
  return consume(request, () => undefined);
}

/**
 * Reads `request` to its end, handing each chunk to `onChunk`; an error it returns stops
 * the reading, destroys the request and rejects. Event listeners rather than `for await`:
 * the async iterator per request was about 6% of the leader's main-thread samples in a V8
 * profile at 256 clients (its stream plumbing, not the bytes).
 */
function consume(request: http.IncomingMessage, onChunk: (chunk: Buffer) => Error | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const settle = (error?: Error): void => {
      request.off("data", onData).off("end", onEnd).off("error", settle).off("close", onClose);
      if (error) reject(error);
      else resolve();
    };
    const onData = (chunk: Buffer): void => {
      const refusal = onChunk(chunk);
      if (refusal === undefined) return;
      settle(refusal);
      request.destroy();
    };
    const onEnd = (): void => settle();
    const endedEarly = (): Error => new RaftwalError(KvErrorCode.BAD_REQUEST, "the request ended before its body did");
    const onClose = (): void => settle(endedEarly());
    if (request.readableEnded) return resolve();
    // Already gone (the client left before the route ran): its 'close' will not come again.
    if (request.destroyed) return reject(request.errored ?? endedEarly());
    request.on("data", onData).on("end", onEnd).on("error", settle).on("close", onClose);
  });
}
