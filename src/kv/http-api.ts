/**
 * The KV service's HTTP/JSON API, served by every node.
 *
 * | request                          | answer                                                          |
 * |----------------------------------|-----------------------------------------------------------------|
 * | `PUT /kv/{key}` body = value     | 200 `{"ok":true,"index":N}`                                     |
 * | `GET /kv/{key}`                  | 200 with the value bytes; linearizable (ReadIndex) by default   |
 * | `GET /kv/{key}?stale=true`       | 200 from this node's state, without a leadership check          |
 * | `DELETE /kv/{key}`               | 200 `{"ok":true}`, 404 if the key was absent                    |
 * | `POST /kv/{key}?cas` JSON body   | `{"expect": string or null, "value": string}`: 200, 409 with `current` on mismatch, 404 if absent |
 * | `GET /status`                    | role, term, leader, commit/applied indexes, per-peer progress   |
 * | `GET /metrics`                   | Prometheus text format                                          |
 *
 * Writes on a follower are answered `307 Temporary Redirect` to the same path on the
 * leader's API (307 keeps the method and body); `503` when no leader is known. Errors are
 * JSON `{"error": code, "message": ...}`: 400 bad input, 404 missing key, 409 CAS
 * mismatch, 413 value too large, 503 no leader or not answered in time (a timed-out write
 * may still take effect: retry it with the same client id and seq).
 *
 * Retries: a client that sends `x-raftwal-client-id` and `x-raftwal-seq` headers gets
 * exactly-once writes (the state machine de-duplicates a retried (client, seq)); without
 * them every request is its own client and a retry is a new write.
 */
import { randomUUID } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { ErrorCode, RaftwalError } from "../errors.js";
import { NodeErrorCode, NotLeaderError } from "../node/errors.js";
import type { Logger } from "../node/logger.js";
import type { RaftNode } from "../node/raft-node.js";
import { encodeCommand, KEY_BYTES_MAX, VALUE_BYTES_MAX, type KvWriteCommand } from "./command.js";
import type { KvResult, KvStateMachine } from "./state-machine.js";

export interface ApiAddress {
  host: string;
  port: number;
}

export interface KvHttpApiOptions {
  node: RaftNode<KvResult>;
  kv: KvStateMachine;
  listen: ApiAddress;
  /** A member's API address (from the cluster configuration), for redirects to the leader. */
  apiAddressOf: (id: number) => ApiAddress | undefined;
  logger: Logger;
  /** Routes the host adds to the API (absent: a request under no route answers 404). */
  extraRoutes?: ExtraRoutes;
}

/**
 * Routes a host adds under one path prefix: `handle` answers every request whose path
 * starts with `pathPrefix` (404s included), after `/status` and `/metrics`, before `/kv/`.
 */
export interface ExtraRoutes {
  /** For example "/admin/". */
  pathPrefix: string;
  handle: (request: http.IncomingMessage, response: http.ServerResponse, url: URL) => Promise<void>;
}

/** Largest request body accepted: a value plus room for a CAS JSON envelope. */
const REQUEST_BODY_BYTES_MAX = 2 * VALUE_BYTES_MAX + 1024;

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export class KvHttpApi {
  private server: http.Server | undefined;

  constructor(private readonly options: KvHttpApiOptions) {}

  async start(): Promise<ApiAddress> {
    const server = http.createServer({ keepAlive: true }, (request, response) => {
      this.handle(request, response).catch((error: unknown) => this.fail(response, error));
    });
    server.keepAliveTimeout = 30_000;
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.options.listen.port, this.options.listen.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    const address = server.address() as AddressInfo;
    return { host: address.address, port: address.port };
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  private async handle(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const url = new URL(request.url ?? "/", "http://localhost");
    if (url.pathname === "/status" && request.method === "GET") return json(response, 200, this.options.node.status());
    if (url.pathname === "/metrics" && request.method === "GET") {
      const text = await this.options.node.metrics.text();
      response.writeHead(200, { "content-type": this.options.node.metrics.contentType });
      response.end(text);
      return;
    }
    const extra = this.options.extraRoutes;
    if (extra && url.pathname.startsWith(extra.pathPrefix)) return extra.handle(request, response, url);
    if (!url.pathname.startsWith("/kv/")) throw new HttpError(404, "NOT_FOUND", `no route ${request.method} ${url.pathname}`);
    const key = decodeKey(url.pathname.slice("/kv/".length));
    switch (request.method) {
      case "GET":
        return this.get(key, url.searchParams.get("stale") === "true", response);
      case "PUT": {
        const value = await readBody(request);
        if (value.length > VALUE_BYTES_MAX) throw new HttpError(413, "TOO_LARGE", `the value is larger than ${VALUE_BYTES_MAX} bytes`);
        return this.write(request, response, { op: "put", key, value });
      }
      case "DELETE":
        await drain(request);
        return this.write(request, response, { op: "delete", key });
      case "POST": {
        if (!url.searchParams.has("cas")) throw new HttpError(400, "BAD_REQUEST", "POST /kv/{key} needs ?cas");
        const cas = parseCasBody(await readBody(request));
        return this.write(request, response, { op: "cas", key, ...cas });
      }
      default:
        throw new HttpError(405, "METHOD_NOT_ALLOWED", `${request.method} is not supported on /kv/{key}`);
    }
  }

  private async get(key: string, stale: boolean, response: http.ServerResponse): Promise<void> {
    // A linearizable read waits for ReadIndex (Raft thesis 6.4); a stale one reads what this node has applied.
    if (!stale) await this.options.node.read();
    const value = this.options.kv.get(key);
    if (value === undefined) throw new HttpError(404, "NOT_FOUND", `no key ${JSON.stringify(key)}`);
    response.writeHead(200, { "content-type": "application/octet-stream", "content-length": value.length });
    response.end(value);
  }

  private async write(
    request: http.IncomingMessage,
    response: http.ServerResponse,
    command: Omit<KvWriteCommand, "clientId" | "seq"> & Partial<KvWriteCommand>,
  ): Promise<void> {
    // Per-request routing needs only role and leader, not the full status (progress, indexes).
    const { role, leader } = this.options.node.leadership();
    if (role !== "leader") return this.redirect(request, response, leader);
    const session = parseSession(request);
    const data = encodeCommand({ ...command, ...session } as KvWriteCommand);
    let result: KvResult | undefined;
    try {
      result = await this.options.node.propose(data);
    } catch (error) {
      if (error instanceof NotLeaderError) return this.redirect(request, response, error.leaderId);
      throw error;
    }
    if (!result) throw new HttpError(500, "INTERNAL", "the state machine returned no result");
    switch (result.status) {
      case "ok":
        return json(response, 200, { ok: true });
      case "not-found":
        throw new HttpError(404, "NOT_FOUND", `no key ${JSON.stringify(command.key)}`);
      case "mismatch":
        throw new HttpError(409, "CAS_MISMATCH", "the current value differs from expect", { current: new TextDecoder().decode(result.current) });
      case "stale":
        throw new HttpError(409, "STALE_SEQUENCE", `this client already applied seq ${result.lastSeq}`);
      case "invalid":
        throw new HttpError(400, "BAD_REQUEST", result.reason);
    }
  }

  private redirect(request: http.IncomingMessage, response: http.ServerResponse, leader: number): void {
    const target = leader ? this.options.apiAddressOf(leader) : undefined;
    if (!target) throw new HttpError(503, "NO_LEADER", "no leader is known; retry shortly");
    response.writeHead(307, { location: `http://${target.host}:${target.port}${request.url ?? "/"}`, "x-raftwal-leader": String(leader) });
    response.end();
  }

  private fail(response: http.ServerResponse, error: unknown): void {
    let status = 500;
    let code = "INTERNAL";
    let message = error instanceof Error ? error.message : String(error);
    let extra: Record<string, unknown> = {};
    if (error instanceof HttpError) {
      ({ status, code, extra } = error);
    } else if (error instanceof NotLeaderError) {
      status = 503;
      code = "NO_LEADER";
    } else if (error instanceof RaftwalError) {
      code = error.code;
      if (error.code === ErrorCode.INVALID_ARGUMENT) status = 400;
      else if (error.code === NodeErrorCode.TIMEOUT || error.code === ErrorCode.PROPOSAL_DROPPED || error.code === NodeErrorCode.PROPOSAL_LOST) status = 503;
      else if (error.code === NodeErrorCode.CLOSED) status = 503;
    }
    if (status === 500) this.options.logger.error("request failed", { error: message });
    if (response.headersSent) {
      response.destroy();
      return;
    }
    json(response, status, { error: code, message, ...extra });
  }
}

function json(response: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  response.end(text);
}

function decodeKey(raw: string): string {
  let key: string;
  try {
    key = decodeURIComponent(raw);
  } catch {
    throw new HttpError(400, "BAD_REQUEST", "the key is not valid percent-encoded UTF-8");
  }
  if (key.length === 0) throw new HttpError(400, "BAD_REQUEST", "the key is empty");
  if (Buffer.byteLength(key) > KEY_BYTES_MAX) throw new HttpError(400, "BAD_REQUEST", `the key is longer than ${KEY_BYTES_MAX} bytes`);
  return key;
}

function parseSession(request: http.IncomingMessage): { clientId: string; seq: number } {
  const clientId = request.headers["x-raftwal-client-id"];
  const seqHeader = request.headers["x-raftwal-seq"];
  if (clientId === undefined && seqHeader === undefined) return { clientId: randomUUID(), seq: 1 };
  if (typeof clientId !== "string" || typeof seqHeader !== "string") {
    throw new HttpError(400, "BAD_REQUEST", "x-raftwal-client-id and x-raftwal-seq go together");
  }
  const seq = Number(seqHeader);
  if (!Number.isSafeInteger(seq) || seq < 1) throw new HttpError(400, "BAD_REQUEST", "x-raftwal-seq must be a positive integer");
  return { clientId, seq };
}

function parseCasBody(body: Uint8Array): { expect: Uint8Array | null; value: Uint8Array } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(body));
  } catch {
    throw new HttpError(400, "BAD_REQUEST", 'the CAS body must be JSON {"expect": string|null, "value": string}');
  }
  const { expect, value } = (parsed ?? {}) as { expect?: unknown; value?: unknown };
  if (typeof value !== "string" || (expect !== null && typeof expect !== "string")) {
    throw new HttpError(400, "BAD_REQUEST", 'the CAS body must be JSON {"expect": string|null, "value": string}');
  }
  const encoder = new TextEncoder();
  return { expect: expect === null ? null : encoder.encode(expect), value: encoder.encode(value) };
}

async function readBody(request: http.IncomingMessage): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > REQUEST_BODY_BYTES_MAX) throw new HttpError(413, "TOO_LARGE", `the body is larger than ${REQUEST_BODY_BYTES_MAX} bytes`);
    chunks.push(chunk);
  }
  const body = Buffer.concat(chunks);
  return body;
}

async function drain(request: http.IncomingMessage): Promise<void> {
  for await (const _chunk of request) {
    // discard
  }
}
