/**
 * The KV service's HTTP/JSON API, served by every node.
 *
 * | request                          | answer                                                          |
 * |----------------------------------|-----------------------------------------------------------------|
 * | `PUT /kv/{key}` body = value     | 200 `{"ok":true}`                                               |
 * | `GET /kv/{key}`                  | 200 with the value bytes; linearizable (ReadIndex) by default   |
 * | `GET /kv/{key}?stale=true`       | 200 from this node's state, without a leadership check          |
 * | `DELETE /kv/{key}`               | 200 `{"ok":true}`, 404 if the key was absent                    |
 * | `POST /kv/{key}?cas` JSON body   | `{"expect": string or null, "value": string}`: 200, 409 with `current` on mismatch, 404 if absent |
 * | `GET /status`                    | role, term, leader, membership, commit/applied indexes, per-peer progress |
 * | `GET /metrics`                   | Prometheus text format                                          |
 * | `/members` ...                   | the cluster's membership and changes to it (members-api.ts)     |
 *
 * Writes on a follower are answered `307 Temporary Redirect` to the same path on the
 * leader's API (307 keeps the method and body); `503` when no leader is known. Errors are
 * JSON `{"error": code, "message": ...}` with a registered code (`KV_ERR_NOT_FOUND`,
 * `NODE_ERR_TIMEOUT`, ...) whose status comes from one table (http-errors.ts): 400 bad
 * input, 404 missing key, 409 CAS mismatch, 413 value too large, 503 no leader or not
 * answered in time (a timed-out write may still take effect: retry it with the same
 * client id and seq).
 *
 * Retries: a client that sends `x-raftwal-client-id` and `x-raftwal-seq` headers gets
 * exactly-once writes (the state machine de-duplicates a retried (client, seq)); without
 * them every request is its own client and a retry is a new write.
 */
import { randomUUID } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { RaftwalError } from "../../storage/errors.js";
import { NotLeaderError } from "../node/errors.js";
import type { Logger } from "../node/logger.js";
import type { RaftNode } from "../node/raft-node.js";
import { encodeCommand, KEY_BYTES_MAX, VALUE_BYTES_MAX, type KvWriteCommand } from "./command.js";
import { KvErrorCode } from "./errors.js";
import { errorAnswer } from "./http-errors.js";
import { drain, json, readBody, redirectToLeader, type ApiAddress } from "./http-io.js";
import { MembersRoutes } from "./members-api.js";
import type { KvResult, KvStateMachine } from "./state-machine.js";

export type { ApiAddress };

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
 * starts with `pathPrefix` (404s included), after `/status`, `/metrics` and `/members`, before `/kv/`.
 */
export interface ExtraRoutes {
  /** For example "/admin/". */
  pathPrefix: string;
  handle: (request: http.IncomingMessage, response: http.ServerResponse, url: URL) => Promise<void>;
}

/** Largest request body accepted: a value plus room for a CAS JSON envelope. */
const REQUEST_BODY_BYTES_MAX = 2 * VALUE_BYTES_MAX + 1024;

export class KvHttpApi {
  private server: http.Server | undefined;
  private readonly members: MembersRoutes;

  constructor(private readonly options: KvHttpApiOptions) {
    this.members = new MembersRoutes({ node: options.node, apiAddressOf: options.apiAddressOf });
  }

  async start(): Promise<ApiAddress> {
    const server = http.createServer({ keepAlive: true }, (request, response) => {
      this.handle(request, response).catch((error: unknown) => this.answerError(response, error));
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
    if (this.members.serves(url.pathname)) return this.members.handle(request, response, url);
    const extra = this.options.extraRoutes;
    if (extra && url.pathname.startsWith(extra.pathPrefix)) return extra.handle(request, response, url);
    if (!url.pathname.startsWith("/kv/")) throw new RaftwalError(KvErrorCode.NO_ROUTE, `no route ${request.method} ${url.pathname}`);
    const key = decodeKey(url.pathname.slice("/kv/".length));
    switch (request.method) {
      case "GET":
        return this.get(key, url.searchParams.get("stale") === "true", response);
      case "PUT": {
        const value = await readBody(request, REQUEST_BODY_BYTES_MAX);
        if (value.length > VALUE_BYTES_MAX) throw new RaftwalError(KvErrorCode.TOO_LARGE, `the value is larger than ${VALUE_BYTES_MAX} bytes`);
        return this.write(request, response, { op: "put", key, value });
      }
      case "DELETE":
        await drain(request);
        return this.write(request, response, { op: "delete", key });
      case "POST": {
        if (!url.searchParams.has("cas")) throw new RaftwalError(KvErrorCode.BAD_REQUEST, "POST /kv/{key} needs ?cas");
        const cas = parseCasBody(await readBody(request, REQUEST_BODY_BYTES_MAX));
        return this.write(request, response, { op: "cas", key, ...cas });
      }
      default:
        throw new RaftwalError(KvErrorCode.METHOD_NOT_ALLOWED, `${request.method} is not supported on /kv/{key}`);
    }
  }

  private async get(key: string, stale: boolean, response: http.ServerResponse): Promise<void> {
    // A linearizable read waits for ReadIndex (Raft thesis 6.4); a stale one reads what this node has applied.
    // With no leader known the API answers 503 at once (as writes do), so that a client can try another node.
    if (!stale && this.options.node.leadership().leader === 0) throw new RaftwalError(KvErrorCode.NO_LEADER, "no leader is known; retry shortly");
    if (!stale) await this.options.node.read().catch(noLeaderOnNotLeader);
    const value = this.options.kv.get(key);
    if (value === undefined) throw new RaftwalError(KvErrorCode.NOT_FOUND, `no key ${JSON.stringify(key)}`);
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
    if (!result) throw new RaftwalError(KvErrorCode.INTERNAL, "the state machine returned no result");
    switch (result.status) {
      case "ok":
        return json(response, 200, { ok: true });
      case "not-found":
        throw new RaftwalError(KvErrorCode.NOT_FOUND, `no key ${JSON.stringify(command.key)}`);
      case "mismatch":
        return this.answerError(response, new RaftwalError(KvErrorCode.CAS_MISMATCH, "the current value differs from expect"), {
          current: new TextDecoder().decode(result.current),
        });
      case "stale":
        throw new RaftwalError(KvErrorCode.STALE_SEQUENCE, `this client already applied seq ${result.lastSeq}`);
      case "invalid":
        throw new RaftwalError(KvErrorCode.BAD_REQUEST, result.reason);
    }
  }

  private redirect(request: http.IncomingMessage, response: http.ServerResponse, leader: number): void {
    redirectToLeader(request, response, leader, this.options.apiAddressOf);
  }

  /** Answers with the status the error's code maps to (http-errors.ts); `details` join the body. */
  private answerError(response: http.ServerResponse, error: unknown, details?: Record<string, unknown>): void {
    const { status, body } = errorAnswer(error, details);
    if (status === 500) this.options.logger.error("request failed", { error: body.message, code: body.error });
    if (response.headersSent) {
      response.destroy();
      return;
    }
    json(response, status, body);
  }
}

/** A read that found no leader to confirm it is answered like a write that found none. */
function noLeaderOnNotLeader(error: unknown): never {
  if (error instanceof NotLeaderError) throw new RaftwalError(KvErrorCode.NO_LEADER, error.message, { cause: error });
  throw error;
}

function decodeKey(raw: string): string {
  let key: string;
  try {
    key = decodeURIComponent(raw);
  } catch {
    throw new RaftwalError(KvErrorCode.BAD_REQUEST, "the key is not valid percent-encoded UTF-8");
  }
  if (key.length === 0) throw new RaftwalError(KvErrorCode.BAD_REQUEST, "the key is empty");
  if (Buffer.byteLength(key) > KEY_BYTES_MAX) throw new RaftwalError(KvErrorCode.BAD_REQUEST, `the key is longer than ${KEY_BYTES_MAX} bytes`);
  return key;
}

function parseSession(request: http.IncomingMessage): { clientId: string; seq: number } {
  const clientId = request.headers["x-raftwal-client-id"];
  const seqHeader = request.headers["x-raftwal-seq"];
  if (clientId === undefined && seqHeader === undefined) return { clientId: randomUUID(), seq: 1 };
  if (typeof clientId !== "string" || typeof seqHeader !== "string") {
    throw new RaftwalError(KvErrorCode.BAD_REQUEST, "x-raftwal-client-id and x-raftwal-seq go together");
  }
  const seq = Number(seqHeader);
  if (!Number.isSafeInteger(seq) || seq < 1) throw new RaftwalError(KvErrorCode.BAD_REQUEST, "x-raftwal-seq must be a positive integer");
  return { clientId, seq };
}

function parseCasBody(body: Uint8Array): { expect: Uint8Array | null; value: Uint8Array } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(body));
  } catch {
    throw new RaftwalError(KvErrorCode.BAD_REQUEST, 'the CAS body must be JSON {"expect": string|null, "value": string}');
  }
  const { expect, value } = (parsed ?? {}) as { expect?: unknown; value?: unknown };
  if (typeof value !== "string" || (expect !== null && typeof expect !== "string")) {
    throw new RaftwalError(KvErrorCode.BAD_REQUEST, 'the CAS body must be JSON {"expect": string|null, "value": string}');
  }
  const encoder = new TextEncoder();
  return { expect: expect === null ? null : encoder.encode(expect), value: encoder.encode(value) };
}
