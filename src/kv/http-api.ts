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
 * | `GET /kv?prefix=P`               | keys starting with P in order, with values: `{"keys": [{"key", "value" or "valueBase64"}], "more", "continue"?}`; `limit` (1,000; at most 10,000), `continue` (the token of the previous page), `keys_only=true`, `stale=true` |
 * | `GET /status`                    | role, term, leader, membership, commit/applied indexes, per-peer progress, `storage` (WAL bytes, snapshot) |
 * | `GET /metrics`                   | Prometheus text format                                          |
 * | `GET /debug/latency`             | where a write's time goes on this node (medians per stage, µs; node started with latencyTrace / `--trace-latency`, else 404); `DELETE` forgets the samples |
 * | `/members` ...                   | the cluster's membership and changes to it (members-api.ts)     |
 * | `POST /leader/transfer`, `GET /snapshot` | leadership transfer, backups (operations-api.ts)        |
 *
 * Keys are read from the raw request path (http-target.ts): percent-encoded UTF-8, taken
 * byte for byte; an unencoded `.` or `..` segment is refused (clients and proxies rewrite
 * it), encoded it is kept. Query parameters a route does not take are refused (400).
 *
 * Writes on a follower are answered `307 Temporary Redirect` to the same path on the
 * leader's API (307 keeps the method and body); `503` when no leader is known (reads too,
 * at once, so that a client can try another node). Errors are JSON `{"error": code,
 * "message": ...}` with a registered code (`KV_ERR_NOT_FOUND`, `NODE_ERR_TIMEOUT`, ...)
 * whose status comes from one table (http-errors.ts): 400 bad input, 401 no token, 404
 * missing key, 409 CAS mismatch, 413 value too large (the message names the limit hit),
 * 503 no leader or not answered in time (a timed-out write may still take effect: retry it
 * with the same client id and seq). TLS and the bearer token: http-server.ts.
 *
 * Retries: a client that sends `x-raftwal-client-id` and `x-raftwal-seq` headers gets
 * exactly-once writes (the state machine de-duplicates a retried (client, seq)); without
 * them every request is its own client and a retry is a new write.
 */
import type http from "node:http";
import { RaftwalError } from "../../storage/errors.js";
import { NotLeaderError } from "../node/errors.js";
import type { Logger } from "../node/logger.js";
import type { LatencySample } from "../node/latency-trace.js";
import type { RaftNode } from "../node/raft-node.js";
import { encodeCommand, VALUE_BYTES_MAX, type KvWriteCommand } from "./command.js";
import { KvErrorCode } from "./errors.js";
import { errorAnswer } from "./http-errors.js";
import { drain, formatBytes, json, readBody, redirectToLeader, type ApiAddress } from "./http-io.js";
import { ApiServer, type ApiTlsOptions } from "./http-server.js";
import { booleanParameter, checkKeyBytes, checkQuery, decodeKey, integerParameter, requestTarget, type RequestTarget } from "./http-target.js";
import { MembersRoutes } from "./members-api.js";
import { OperationsRoutes } from "./operations-api.js";
import type { KvResult, KvStateMachine } from "./state-machine.js";

export type { ApiAddress, ApiTlsOptions };

export interface KvHttpApiOptions {
  node: RaftNode<KvResult>;
  kv: KvStateMachine;
  listen: ApiAddress;
  /** A member's API address (from the cluster configuration), for redirects to the leader. */
  apiAddressOf: (id: number) => ApiAddress | undefined;
  logger: Logger;
  /** Routes the host adds to the API (absent: a request under no route answers 404). */
  extraRoutes?: ExtraRoutes;
  /** HTTPS (optionally requiring client certificates); absent: plain HTTP. */
  tls?: ApiTlsOptions;
  /** Every request must carry `Authorization: Bearer <token>`. */
  token?: string;
  /** Allow the token over plain HTTP on an address other than loopback. */
  allowInsecureToken?: boolean;
  /** The node's timing (for how long a leadership transfer may take). */
  tickMs?: number;
  electionTimeoutTicks?: number;
}

/**
 * Routes a host adds under one path prefix: `handle` answers every request whose path
 * starts with `pathPrefix` (404s included), after the API's own routes but `/kv`.
 */
export interface ExtraRoutes {
  /** For example "/admin/". */
  pathPrefix: string;
  handle: (request: http.IncomingMessage, response: http.ServerResponse, url: URL) => Promise<void>;
}

/** A PUT's body is the value. */
const PUT_BODY_LIMIT = { bytesMax: VALUE_BYTES_MAX, what: "the value" };
/** A CAS body is JSON holding two values. */
const CAS_BODY_LIMIT = { bytesMax: 2 * VALUE_BYTES_MAX + 1024, what: "the CAS body (JSON with expect and value)" };
/** Keys per page of `GET /kv`, by default and at most. */
export const LIST_LIMIT_DEFAULT = 1000;
export const LIST_LIMIT_MAX = 10_000;
/** Bytes of keys and values per page of `GET /kv` (a page always holds at least one key). */
export const LIST_PAGE_BYTES_MAX = 4 * 1024 * 1024;

export class KvHttpApi {
  private readonly server: ApiServer;
  private readonly members: MembersRoutes;
  private readonly operations: OperationsRoutes;

  constructor(private readonly options: KvHttpApiOptions) {
    this.server = new ApiServer({
      listen: options.listen,
      tls: options.tls,
      token: options.token,
      allowInsecureToken: options.allowInsecureToken,
      handle: (request, response) => this.handle(request, response),
      answerError: (response, error) => this.answerError(response, error),
    });
    this.members = new MembersRoutes({ node: options.node, redirect: this.redirect });
    this.operations = new OperationsRoutes({ ...options, clusterId: options.node.status().clusterId, redirect: this.redirect });
  }

  start(): Promise<ApiAddress> {
    return this.server.start();
  }

  /** Stops accepting requests and waits for those in flight (up to `drainTimeoutMs`) before closing every connection. */
  close(drainTimeoutMs = 0): Promise<void> {
    return this.server.close(drainTimeoutMs);
  }

  private readonly redirect = (request: http.IncomingMessage, response: http.ServerResponse, leader: number): void =>
    redirectToLeader(request, response, leader, this.options.apiAddressOf, this.server.scheme);

  private async handle(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const target = requestTarget(request.url);
    const path = target.rawPath;
    if (path === "/status" && request.method === "GET") {
      checkQuery(target.query, [], "GET /status");
      return json(response, 200, { ...this.options.node.status(), storage: await this.options.node.storageUsage() });
    }
    if (path === "/metrics" && request.method === "GET") {
      const text = await this.options.node.metrics.text();
      response.writeHead(200, { "content-type": this.options.node.metrics.contentType });
      response.end(text);
      return;
    }
    if (path === "/debug/latency") return this.latency(request, response);
    const url = () => new URL(request.url ?? "/", "http://localhost");
    if (this.members.serves(path)) return this.members.handle(request, response, url());
    if (this.operations.serves(path)) return this.operations.handle(request, response, target);
    const extra = this.options.extraRoutes;
    if (extra && path.startsWith(extra.pathPrefix)) return extra.handle(request, response, url());
    if (path === "/kv") return this.list(request, response, target);
    if (!path.startsWith("/kv/")) throw new RaftwalError(KvErrorCode.NO_ROUTE, `no route ${request.method} ${path}`);
    return this.keyRoute(request, response, target);
  }

  /** `GET /debug/latency`: the latency trace's summary; `DELETE` forgets its samples. */
  private async latency(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    await drain(request);
    const trace = this.options.node.latencyTrace;
    if (!trace) throw new RaftwalError(KvErrorCode.NO_ROUTE, "the latency trace is off: start the node with --trace-latency (latencyTrace: true)");
    if (request.method === "DELETE") {
      trace.reset();
      return json(response, 200, { ok: true });
    }
    if (request.method !== "GET") throw new RaftwalError(KvErrorCode.METHOD_NOT_ALLOWED, `${request.method} is not supported on /debug/latency`);
    return json(response, 200, trace.summary());
  }

  private async keyRoute(request: http.IncomingMessage, response: http.ServerResponse, target: RequestTarget): Promise<void> {
    // Where a traced write starts (latencyTrace on): no clock is read when it is off.
    const trace = request.method === "PUT" ? this.options.node.latencyTrace?.begin() : undefined;
    const key = decodeKey(target.rawPath.slice("/kv/".length));
    const query = target.query;
    switch (request.method) {
      case "GET":
        checkQuery(query, ["stale"], "GET /kv/{key}");
        return this.get(key, booleanParameter(query, "stale"), response);
      case "PUT": {
        checkQuery(query, [], "PUT /kv/{key}");
        const value = await readBody(request, PUT_BODY_LIMIT);
        if (trace) this.options.node.latencyTrace?.mark(trace, "bodyRead");
        return this.write(request, response, { op: "put", key, value }, trace);
      }
      case "DELETE":
        checkQuery(query, [], "DELETE /kv/{key}");
        await drain(request);
        return this.write(request, response, { op: "delete", key });
      case "POST": {
        checkQuery(query, ["cas"], "POST /kv/{key}");
        if (!query.has("cas")) throw new RaftwalError(KvErrorCode.BAD_REQUEST, "POST /kv/{key} needs ?cas");
        const cas = parseCasBody(await readBody(request, CAS_BODY_LIMIT));
        return this.write(request, response, { op: "cas", key, ...cas });
      }
      default:
        throw new RaftwalError(KvErrorCode.METHOD_NOT_ALLOWED, `${request.method} is not supported on /kv/{key}`);
    }
  }

  /**
   * A linearizable read waits for ReadIndex (Raft thesis 6.4); a stale one reads what this
   * node has applied. With no leader known the API answers 503 at once (as writes do), so
   * that a client can try another node.
   */
  private async readBarrier(stale: boolean): Promise<void> {
    if (stale) return;
    if (this.options.node.leadership().leader === 0) throw new RaftwalError(KvErrorCode.NO_LEADER, "no leader is known; retry shortly");
    await this.options.node.read().catch(noLeaderOnNotLeader);
  }

  private async get(key: string, stale: boolean, response: http.ServerResponse): Promise<void> {
    await this.readBarrier(stale);
    const value = this.options.kv.get(key);
    if (value === undefined) throw new RaftwalError(KvErrorCode.NOT_FOUND, `no key ${JSON.stringify(key)}`);
    response.writeHead(200, { "content-type": "application/octet-stream", "content-length": value.length });
    response.end(value);
  }

  /** `GET /kv?prefix=P`: one page of keys in order (see the table above). */
  private async list(request: http.IncomingMessage, response: http.ServerResponse, target: RequestTarget): Promise<void> {
    if (request.method !== "GET") throw new RaftwalError(KvErrorCode.METHOD_NOT_ALLOWED, `${request.method} is not supported on /kv`);
    const query = target.query;
    checkQuery(query, ["prefix", "limit", "continue", "keys_only", "stale"], "GET /kv");
    const prefix = query.get("prefix") ?? "";
    checkKeyBytes(prefix, "prefix");
    const limit = integerParameter(query, "limit", { min: 1, max: LIST_LIMIT_MAX, fallback: LIST_LIMIT_DEFAULT });
    const after = parseContinueToken(query.get("continue"));
    const keysOnly = booleanParameter(query, "keys_only");
    const stale = booleanParameter(query, "stale");
    await drain(request);
    await this.readBarrier(stale);
    const page = this.options.kv.list({ prefix, after, limit, bytesMax: keysOnly ? Number.POSITIVE_INFINITY : LIST_PAGE_BYTES_MAX });
    const keys = page.entries.map(([key, value]) => (keysOnly ? { key } : { key, ...valueField(value) }));
    const last = page.entries.at(-1)?.[0];
    json(response, 200, { keys, more: page.more, ...(page.more && last !== undefined ? { continue: Buffer.from(last).toString("base64url") } : {}) });
  }

  private async write(
    request: http.IncomingMessage,
    response: http.ServerResponse,
    command: Omit<KvWriteCommand, "clientId" | "seq"> & Partial<KvWriteCommand>,
    trace?: LatencySample,
  ): Promise<void> {
    // Per-request routing needs only role and leader, not the full status (progress, indexes).
    const { role, leader } = this.options.node.leadership();
    if (role !== "leader") return this.redirect(request, response, leader);
    const session = parseSession(request);
    const data = encodeCommand({ ...command, ...session } as KvWriteCommand);
    let result: KvResult | undefined;
    try {
      result = await this.options.node.propose(data, trace);
    } catch (error) {
      if (error instanceof NotLeaderError) return this.redirect(request, response, error.leaderId);
      throw error;
    }
    if (!result) throw new RaftwalError(KvErrorCode.INTERNAL, "the state machine returned no result");
    switch (result.status) {
      case "ok":
        json(response, 200, { ok: true });
        if (trace) this.options.node.latencyTrace?.finish(trace);
        return;
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

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** A value in a JSON answer: its text when it is UTF-8, else base64. */
function valueField(value: Uint8Array): { value: string } | { valueBase64: string } {
  try {
    return { value: strictUtf8.decode(value) };
  } catch {
    return { valueBase64: Buffer.from(value).toString("base64") };
  }
}

/** The `continue` token of `GET /kv`: the previous page's last key, base64url-encoded. */
function parseContinueToken(token: string | null): string | undefined {
  if (token === null) return undefined;
  const key = Buffer.from(token, "base64url").toString("utf8");
  if (token === "" || Buffer.from(key).toString("base64url") !== token) throw new RaftwalError(KvErrorCode.BAD_REQUEST, `?continue=${token} is not a token this API gave`);
  return key;
}

function parseSession(request: http.IncomingMessage): { clientId: string; seq: number } {
  const clientId = request.headers["x-raftwal-client-id"];
  const seqHeader = request.headers["x-raftwal-seq"];
  // No session headers: an anonymous write, which costs the state machine no session.
  if (clientId === undefined && seqHeader === undefined) return { clientId: "", seq: 0 };
  if (typeof clientId !== "string" || typeof seqHeader !== "string") {
    throw new RaftwalError(KvErrorCode.BAD_REQUEST, "x-raftwal-client-id and x-raftwal-seq go together");
  }
  const seq = Number(seqHeader);
  if (!Number.isSafeInteger(seq) || seq < 1) throw new RaftwalError(KvErrorCode.BAD_REQUEST, "x-raftwal-seq must be a positive integer");
  return { clientId, seq };
}

const CAS_BODY_SHAPE = 'the CAS body must be JSON {"expect": string|null, "value": string}';

/**
 * `{"expect", "value"}`: strict UTF-8 JSON whose strings are well-formed Unicode (a lone
 * surrogate is refused here, as in a key, instead of being stored as U+FFFD); a value or
 * expect over VALUE_BYTES_MAX is 413, as the same value in a PUT.
 */
function parseCasBody(body: Uint8Array): { expect: Uint8Array | null; value: Uint8Array } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(strictUtf8.decode(body));
  } catch {
    throw new RaftwalError(KvErrorCode.BAD_REQUEST, `${CAS_BODY_SHAPE} (UTF-8)`);
  }
  const { expect, value } = (parsed ?? {}) as { expect?: unknown; value?: unknown };
  if (typeof value !== "string" || (expect !== null && typeof expect !== "string")) throw new RaftwalError(KvErrorCode.BAD_REQUEST, CAS_BODY_SHAPE);
  const encoder = new TextEncoder();
  const encode = (text: string, name: string): Uint8Array => {
    if (/\p{Surrogate}/u.test(text)) throw new RaftwalError(KvErrorCode.BAD_REQUEST, `the CAS ${name} holds a lone surrogate: it is not valid Unicode`);
    const bytes = encoder.encode(text);
    if (bytes.length > VALUE_BYTES_MAX) throw new RaftwalError(KvErrorCode.TOO_LARGE, `the CAS ${name} is larger than its limit of ${formatBytes(VALUE_BYTES_MAX)} bytes`);
    return bytes;
  };
  return { expect: expect === null ? null : encode(expect, "expect"), value: encode(value, "value") };
}
