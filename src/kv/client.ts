/**
 * An HTTP(S) client of the KV service: follows the leader's redirects, retries writes that
 * got no answer with the same (client id, seq) so each write takes effect exactly once,
 * and keeps connections alive. It also lists keys, lists and changes the cluster's
 * membership (members-api.ts; a change is retried only when nothing was done: no leader
 * took it yet, or another change was in progress), moves leadership and streams backups
 * (operations-api.ts).
 *
 * Paths are sent as written: keys are percent-encoded with their dots (http-target.ts), and
 * no `URL` object normalises a path on the way (`/kv/%2E%2E` would become `/`).
 *
 * When no endpoint answers within the operation timeout (every node down, a wrong port),
 * the error is KV_ERR_UNAVAILABLE and names every endpoint with its last error.
 */
import { randomUUID } from "node:crypto";
import http from "node:http";
import https from "node:https";
import { setTimeout as sleep } from "node:timers/promises";
import { RaftwalError, RaftwalErrorCode } from "../../storage/errors.js";
import { RaftErrorCode } from "../raft/errors.js";
import { KvErrorCode } from "./errors.js";
import { encodeKeyForPath } from "./http-target.js";
import type { MembersAnswer } from "./members-api.js";

export type { MembersAnswer };

/** TLS for https endpoints (PEM): the CA to trust, and a client certificate when the API requires one. */
export interface KvClientTlsOptions {
  ca?: Buffer | string;
  cert?: Buffer | string;
  key?: Buffer | string;
}

export interface KvClientOptions {
  /** API base URLs of the cluster's nodes, e.g. http://127.0.0.1:8001 (https:// with TLS). */
  endpoints: string[];
  /**
   * Identifies this client's sessions for de-duplication. Default: a random UUID. Each write
   * in flight at once has a session of its own, `<clientId>/<lane>` (see KvClient).
   */
  clientId?: string;
  /** Per-request timeout. Default 5 s (at most the operation timeout). */
  requestTimeoutMs?: number;
  /** Total time one operation may take, retries included. Default 15 s. */
  operationTimeoutMs?: number;
  /** Shared keep-alive agent for http endpoints (benchmarks pass one sized to their concurrency). */
  agent?: http.Agent;
  /** Per-request timeout of a membership change. Default 30 s. */
  membershipRequestTimeoutMs?: number;
  /** For https endpoints. */
  tls?: KvClientTlsOptions;
  /** Sent as `Authorization: Bearer <token>` on every request. */
  token?: string;
}

/** A new member, as `addLearner` takes it: addresses as "host:port". */
export interface NewMember {
  id: number;
  peerAddress: string;
  apiAddress?: string;
}

/** One page of `list`. */
export interface KvListPage {
  keys: Array<{ key: string; value?: string; valueBase64?: string }>;
  more: boolean;
  /** Pass it back as `continue` for the next page (set when `more`). */
  continue?: string;
}

/** What `transferLeader` answers. */
export interface LeaderTransferAnswer {
  leader: number;
  previousLeader: number;
  term: number;
}

/**
 * How one request is sent and retried: `retryable` decides whether an error answer or a
 * connection error is tried again (on the next endpoint for a connection error) until the
 * operation timeout.
 */
interface RequestPolicy {
  headers?: Record<string, string>;
  /** Statuses other than 200 that are answers, not errors. */
  accepted?: number[];
  retryable: (error: unknown) => boolean;
  /** A connection that is not kept alive (membership changes). */
  fresh?: boolean;
  timeoutMs?: number;
}

/** Writes carry a session (client id, seq), reads change nothing: any 503 (retry later) or lost connection may be retried. */
const RETRY_UNAVAILABLE = (error: unknown): boolean => !(error instanceof KvError) || error.status === 503;

/**
 * A membership change has no session: retried only when nothing was done. An answer that
 * says no leader took it (none known, not the leader, a new leader not ready yet), or that
 * another change is still in progress (two nodes joining at once), or a refused
 * connection. A timeout may still take effect, so it is reported instead.
 */
function changeNotStarted(error: unknown): boolean {
  if (error instanceof KvError) return CHANGE_NOT_STARTED_CODES.has(error.code);
  return (error as NodeJS.ErrnoException).code === "ECONNREFUSED";
}
const CHANGE_NOT_STARTED_CODES = new Set<string>([
  KvErrorCode.NO_LEADER,
  RaftErrorCode.NOT_LEADER,
  RaftErrorCode.LEADER_NOT_READY,
  RaftErrorCode.CONFIG_CHANGE_IN_PROGRESS,
]);

export interface KvResponse {
  status: number;
  body: Buffer;
  headers: http.IncomingHttpHeaders;
}

/** Per-request timeout of a membership change: the node waits up to twice its membershipTimeoutMs (10 s by default). */
export const MEMBERSHIP_REQUEST_TIMEOUT_MS_DEFAULT = 30_000;
export const OPERATION_TIMEOUT_MS_DEFAULT = 15_000;
export const REQUEST_TIMEOUT_MS_DEFAULT = 5_000;

/** Redirects followed per attempt: a redirect chain longer than the cluster means no stable leader. */
const REDIRECTS_MAX = 5;
/** Pause between retries after a 503 or a connection error (no leader yet, node restarting). */
const RETRY_DELAY_MS = 100;

/**
 * An error answer from the API: its HTTP status, and the code and message of its body
 * (KV_ERR_BAD_RESPONSE when the body is not the API's JSON error).
 */
export class KvError extends RaftwalError {
  constructor(
    readonly status: number,
    code: string,
    message: string,
  ) {
    super(code, message);
  }
}

/** Where a request goes: the origin (scheme, host, port) and the path with its query, as sent. */
export interface RequestAddress {
  origin: URL;
  path: string;
}

/** An API endpoint (http or https, with no path); INVALID_ARGUMENT naming it otherwise. */
export function parseEndpoint(endpoint: string): URL {
  let url: URL | undefined;
  try {
    url = new URL(endpoint);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== "http:" && url.protocol !== "https:") || (url.pathname !== "/" && url.pathname !== "")) {
    throw new RaftwalError(RaftwalErrorCode.INVALID_ARGUMENT, `endpoint '${endpoint}' is not the URL of a node's API (http://HOST:PORT or https://HOST:PORT)`);
  }
  return url;
}

/** A redirect's location, keeping its path as sent. */
function splitLocation(location: string): RequestAddress {
  const match = /^(https?:\/\/[^/?#]+)(.*)$/i.exec(location);
  if (!match) throw new KvError(0, KvErrorCode.BAD_RESPONSE, `a redirect to '${location}', which is not an API URL`);
  return { origin: new URL(match[1]), path: match[2] || "/" };
}

function describeFailure(error: unknown): string {
  const errno = error as NodeJS.ErrnoException;
  return errno?.code && !(error instanceof RaftwalError) ? errno.code : ((error as Error)?.message ?? String(error));
}

export class KvClient {
  readonly clientId: string;
  /**
   * Write lanes not in use, each with the last seq it sent. The state machine's session
   * remembers one (seq, result) per client id: a retry of a write is answered from it only
   * while no later seq of that id was applied. So every write in flight at once uses a lane
   * of its own (client id `<clientId>/<lane>`, seqs in order on it); lanes are reused, so
   * the sessions a client costs are as many as its most writes in flight at once.
   */
  private readonly freeLanes: Array<{ lane: number; seq: number }> = [];
  private lanesMade = 0;
  private endpointIndex = 0;
  private endpoints: URL[];
  private readonly agent: http.Agent;
  private readonly httpsAgent: https.Agent;
  private readonly freshHttpAgent = new http.Agent({ keepAlive: false });
  private readonly freshHttpsAgent: https.Agent;

  constructor(private readonly options: KvClientOptions) {
    if (options.endpoints.length === 0) throw new RaftwalError(RaftwalErrorCode.INVALID_ARGUMENT, "KvClient needs at least one endpoint");
    this.endpoints = options.endpoints.map(parseEndpoint);
    this.clientId = options.clientId ?? randomUUID();
    this.agent = options.agent ?? new http.Agent({ keepAlive: true, maxSockets: 64 });
    this.httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 64, ...options.tls });
    this.freshHttpsAgent = new https.Agent({ keepAlive: false, ...options.tls });
  }

  async put(key: string, value: Uint8Array | string): Promise<void> {
    await this.write("PUT", key, typeof value === "string" ? Buffer.from(value) : Buffer.from(value));
  }

  /** Returns false when the key was absent. */
  async delete(key: string): Promise<boolean> {
    const response = await this.write("DELETE", key, undefined, [404]);
    return response.status === 200;
  }

  /** Compare-and-set; `expect` null means "only if absent". */
  async cas(key: string, expect: string | null, value: string): Promise<{ ok: true } | { ok: false; current: string | undefined }> {
    const response = await this.write("POST", key, Buffer.from(JSON.stringify({ expect, value })), [404, 409], "?cas");
    if (response.status === 200) return { ok: true };
    if (response.status === 404) return { ok: false, current: undefined };
    return { ok: false, current: (JSON.parse(response.body.toString()) as { current?: string }).current };
  }

  /** Linearizable by default; `stale` reads whatever the answering node has applied. */
  async get(key: string, options: { stale?: boolean } = {}): Promise<Buffer | undefined> {
    const response = await this.request("GET", `/kv/${encodeKeyForPath(key)}${options.stale ? "?stale=true" : ""}`, undefined, { accepted: [404], retryable: RETRY_UNAVAILABLE });
    return response.status === 404 ? undefined : response.body;
  }

  /** One page of the keys starting with `prefix`, in order (linearizable unless `stale`). */
  async list(prefix: string, options: { limit?: number; continue?: string; keysOnly?: boolean; stale?: boolean } = {}): Promise<KvListPage> {
    const query = new URLSearchParams({ prefix });
    if (options.limit !== undefined) query.set("limit", String(options.limit));
    if (options.continue !== undefined) query.set("continue", options.continue);
    if (options.keysOnly) query.set("keys_only", "true");
    if (options.stale) query.set("stale", "true");
    const response = await this.request("GET", `/kv?${query.toString()}`, undefined, { retryable: RETRY_UNAVAILABLE });
    return JSON.parse(response.body.toString()) as KvListPage;
  }

  /** The membership as the leader sees it, with each member's progress; `stale`: the first answering node's own view. */
  async members(options: { stale?: boolean } = {}): Promise<MembersAnswer> {
    const response = await this.request("GET", `/members${options.stale ? "?stale=true" : ""}`, undefined, { retryable: RETRY_UNAVAILABLE });
    return JSON.parse(response.body.toString()) as MembersAnswer;
  }

  /** Adds a member as a learner; resolves with the membership once the change is applied on the leader. */
  addLearner(member: NewMember): Promise<MembersAnswer> {
    return this.change("POST", "/members", Buffer.from(JSON.stringify(member)));
  }

  /** Makes a caught-up learner a voter (RAFT_ERR_LEARNER_BEHIND, status 409, before). */
  promote(id: number): Promise<MembersAnswer> {
    return this.change("POST", `/members/${id}/promote`);
  }

  /** Removes a voter or a learner; the removed node stops by itself. */
  removeMember(id: number): Promise<MembersAnswer> {
    return this.change("DELETE", `/members/${id}`);
  }

  /**
   * Replaces the endpoints (the cluster's members changed: new nodes' APIs added, removed
   * nodes' dropped). The next request starts at the endpoint it would have used, if kept.
   */
  setEndpoints(endpoints: string[]): void {
    if (endpoints.length === 0) throw new RaftwalError(RaftwalErrorCode.INVALID_ARGUMENT, "KvClient needs at least one endpoint");
    const current = this.endpoints[this.endpointIndex];
    this.endpoints = endpoints.map(parseEndpoint);
    this.endpointIndex = Math.max(0, this.endpoints.findIndex((endpoint) => endpoint.host === current.host));
  }

  /** Hands leadership to voter `to`; resolves once it leads (NODE_ERR_TRANSFER_FAILED, 503, if it did not in time). */
  async transferLeader(to: number): Promise<LeaderTransferAnswer> {
    const response = await this.request("POST", `/leader/transfer?to=${to}`, undefined, {
      retryable: changeNotStarted,
      fresh: true,
      timeoutMs: this.options.membershipRequestTimeoutMs ?? MEMBERSHIP_REQUEST_TIMEOUT_MS_DEFAULT,
    });
    return JSON.parse(response.body.toString()) as LeaderTransferAnswer;
  }

  /** One node's `/status` (no retry: a node that does not answer is what the caller wants to know). */
  async status(endpoint: string): Promise<Record<string, unknown>> {
    const origin = parseEndpoint(endpoint);
    const response = await this.send("GET", { origin, path: "/status" }, undefined, {}, this.requestTimeoutMs());
    if (response.status !== 200) throw parseError(response);
    return JSON.parse(response.body.toString()) as Record<string, unknown>;
  }

  /**
   * A backup streamed from the first endpoint that answers (GET /snapshot): the response,
   * to be read to its end. The caller checks it (backup-format.ts, BackupVerifier).
   */
  async openSnapshot(): Promise<{ endpoint: string; stream: http.IncomingMessage }> {
    const failures: string[] = [];
    for (const origin of this.endpoints) {
      try {
        const stream = await this.openStream({ origin, path: "/snapshot" });
        return { endpoint: origin.origin, stream };
      } catch (error) {
        if (error instanceof KvError && error.status !== 503) throw error;
        failures.push(`${origin.origin} (${describeFailure(error)})`);
      }
    }
    throw new RaftwalError(KvErrorCode.UNAVAILABLE, `no endpoint served a snapshot: ${failures.join(", ")}`);
  }

  close(): void {
    if (!this.options.agent) this.agent.destroy();
    this.httpsAgent.destroy();
    this.freshHttpAgent.destroy();
    this.freshHttpsAgent.destroy();
  }

  private requestTimeoutMs(): number {
    return Math.min(this.options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS_DEFAULT, this.options.operationTimeoutMs ?? OPERATION_TIMEOUT_MS_DEFAULT);
  }

  private async write(method: string, key: string, body: Buffer | undefined, accepted: number[] = [], query = ""): Promise<KvResponse> {
    const lane = this.freeLanes.pop() ?? { lane: ++this.lanesMade, seq: 0 };
    lane.seq += 1;
    // The same (client id, seq) on every retry: the state machine applies the write once.
    const headers = { "x-raftwal-client-id": `${this.clientId}/${lane.lane}`, "x-raftwal-seq": String(lane.seq) };
    try {
      return await this.request(method, `/kv/${encodeKeyForPath(key)}${query}`, body, { headers, accepted, retryable: RETRY_UNAVAILABLE });
    } finally {
      // Even after a failure: the lane's next write takes the next seq, as one client's would.
      this.freeLanes.push(lane);
    }
  }

  private async change(method: string, path: string, body?: Buffer): Promise<MembersAnswer> {
    const response = await this.request(method, path, body, {
      headers: body ? { "content-type": "application/json" } : {},
      retryable: changeNotStarted,
      fresh: true,
      timeoutMs: this.options.membershipRequestTimeoutMs ?? MEMBERSHIP_REQUEST_TIMEOUT_MS_DEFAULT,
    });
    return JSON.parse(response.body.toString()) as MembersAnswer;
  }

  private async request(method: string, path: string, body: Buffer | undefined, policy: RequestPolicy): Promise<KvResponse> {
    const operationTimeoutMs = this.options.operationTimeoutMs ?? OPERATION_TIMEOUT_MS_DEFAULT;
    const deadline = Date.now() + operationTimeoutMs;
    let lastError: unknown;
    /** The last connection failure of each endpoint, for the error when none answers. */
    const failures = new Map<string, string>();
    while (Date.now() < deadline) {
      let address: RequestAddress = { origin: this.endpoints[this.endpointIndex], path };
      try {
        for (let redirects = 0; redirects <= REDIRECTS_MAX; redirects++) {
          const response = await this.send(method, address, body, policy.headers ?? {}, policy.timeoutMs ?? this.requestTimeoutMs(), policy.fresh);
          if (response.status === 307 && response.headers.location) {
            address = splitLocation(response.headers.location);
            continue;
          }
          if (response.status === 200 || policy.accepted?.includes(response.status)) {
            this.remember(address.origin);
            return response;
          }
          const error = parseError(response);
          if (!policy.retryable(error)) throw error;
          lastError = error;
          break;
        }
      } catch (error) {
        if (error instanceof KvError || !policy.retryable(error)) throw error;
        lastError = error;
        failures.set(address.origin.origin, describeFailure(error));
        this.endpointIndex = (this.endpointIndex + 1) % this.endpoints.length;
      }
      await sleep(RETRY_DELAY_MS);
    }
    if (lastError instanceof KvError) throw lastError;
    const tried = this.endpoints.map((endpoint) => `${endpoint.origin} (${failures.get(endpoint.origin) ?? "not tried"})`);
    throw new RaftwalError(KvErrorCode.UNAVAILABLE, `no endpoint answered ${method} ${path} within ${operationTimeoutMs} ms: ${tried.join(", ")}`, { cause: lastError });
  }

  /** Start the next request at the node that answered (usually the leader). */
  private remember(origin: URL): void {
    const index = this.endpoints.findIndex((endpoint) => endpoint.host === origin.host);
    if (index >= 0) this.endpointIndex = index;
  }

  private agentFor(origin: URL, fresh = false): http.Agent {
    if (origin.protocol === "https:") return fresh ? this.freshHttpsAgent : this.httpsAgent;
    return fresh ? this.freshHttpAgent : this.agent;
  }

  private send(method: string, address: RequestAddress, body: Buffer | undefined, headers: Record<string, string>, timeoutMs: number, fresh = false): Promise<KvResponse> {
    const withToken = this.options.token === undefined ? headers : { ...headers, authorization: `Bearer ${this.options.token}` };
    return sendTo(this.agentFor(address.origin, fresh), method, address, body, withToken, timeoutMs);
  }

  /** A GET whose 200 response is handed over as a stream; an error answer is read and thrown. */
  private openStream(address: RequestAddress): Promise<http.IncomingMessage> {
    const headers: Record<string, string> = this.options.token === undefined ? {} : { authorization: `Bearer ${this.options.token}` };
    return new Promise((resolve, reject) => {
      const request = requestFor(address.origin)(
        { ...target(address), method: "GET", agent: this.agentFor(address.origin, true), headers, timeout: this.requestTimeoutMs() },
        (response) => {
          if (response.statusCode === 200) {
            request.setTimeout(0);
            return resolve(response);
          }
          const chunks: Buffer[] = [];
          response.on("data", (chunk: Buffer) => chunks.push(chunk));
          response.on("end", () => reject(parseError({ status: response.statusCode ?? 0, body: Buffer.concat(chunks), headers: response.headers })));
        },
      );
      request.on("timeout", () => request.destroy(new Error(`GET ${address.origin.origin}${address.path} timed out`)));
      request.on("error", reject);
      request.end();
    });
  }
}

function parseError(response: KvResponse): KvError {
  try {
    const parsed = JSON.parse(response.body.toString()) as { error?: string; message?: string };
    return new KvError(response.status, parsed.error ?? KvErrorCode.BAD_RESPONSE, parsed.message ?? `HTTP ${response.status}`);
  } catch {
    return new KvError(response.status, KvErrorCode.BAD_RESPONSE, `HTTP ${response.status}`);
  }
}

function requestFor(origin: URL): typeof http.request {
  return origin.protocol === "https:" ? https.request : http.request;
}

/** Node's request options for an address: the path goes as written. */
function target(address: RequestAddress): http.RequestOptions {
  return { protocol: address.origin.protocol, hostname: address.origin.hostname.replace(/^\[(.*)\]$/, "$1"), port: address.origin.port, path: address.path };
}

/** One HTTP request with a timeout; resolves with the whole response. */
export function send(
  agent: http.Agent,
  method: string,
  url: URL,
  body: Buffer | undefined,
  headers: Record<string, string>,
  timeoutMs: number,
): Promise<KvResponse> {
  return sendTo(agent, method, { origin: url, path: `${url.pathname}${url.search}` }, body, headers, timeoutMs);
}

function sendTo(agent: http.Agent, method: string, address: RequestAddress, body: Buffer | undefined, headers: Record<string, string>, timeoutMs: number): Promise<KvResponse> {
  return new Promise((resolve, reject) => {
    const request = requestFor(address.origin)(
      { ...target(address), method, agent, headers: { ...headers, ...(body ? { "content-length": String(body.length) } : {}) }, timeout: timeoutMs },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks), headers: response.headers }));
        response.on("error", reject);
      },
    );
    // Headers and body leave in separate writes: without this, Nagle's algorithm holds the
    // body until the server's (delayed) ACK of the headers arrives.
    request.on("socket", (socket) => socket.setNoDelay(true));
    request.on("timeout", () => request.destroy(new Error(`${method} ${address.origin.origin}${address.path} timed out after ${timeoutMs} ms`)));
    request.on("error", reject);
    request.end(body);
  });
}
