/**
 * An HTTP client of the KV service: follows the leader's redirects, retries writes that
 * got no answer with the same (client id, seq) so each write takes effect exactly once,
 * and keeps connections alive. It also lists and changes the cluster's membership
 * (members-api.ts); a change is retried only when nothing was done (no leader took it
 * yet, or another change was in progress).
 */
import { randomUUID } from "node:crypto";
import http from "node:http";
import { RaftwalError, RaftwalErrorCode } from "../../storage/errors.js";
import { RaftErrorCode } from "../raft/errors.js";
import { KvErrorCode } from "./errors.js";
import type { MembersAnswer } from "./members-api.js";

export type { MembersAnswer };

export interface KvClientOptions {
  /** API base URLs of the cluster's nodes, e.g. http://127.0.0.1:8001. */
  endpoints: string[];
  /** Identifies this client's session for de-duplication. Default: a random UUID. */
  clientId?: string;
  /** Per-request timeout. Default 5 s. */
  requestTimeoutMs?: number;
  /** Total time one operation may take, retries included. Default 15 s. */
  operationTimeoutMs?: number;
  /** Shared keep-alive agent (benchmarks pass one sized to their concurrency). */
  agent?: http.Agent;
  /** Per-request timeout of a membership change. Default 30 s. */
  membershipRequestTimeoutMs?: number;
}

/** A new member, as `addLearner` takes it: addresses as "host:port". */
export interface NewMember {
  id: number;
  peerAddress: string;
  apiAddress?: string;
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
  agent?: http.Agent;
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

/** Membership changes are rare: each on a new connection, so that no reused socket dies under one. */
const CHANGE_AGENT = new http.Agent({ keepAlive: false });

export interface KvResponse {
  status: number;
  body: Buffer;
  headers: http.IncomingHttpHeaders;
}

/** Per-request timeout of a membership change: the node waits up to twice its membershipTimeoutMs (10 s by default). */
export const MEMBERSHIP_REQUEST_TIMEOUT_MS_DEFAULT = 30_000;

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

export class KvClient {
  readonly clientId: string;
  private seq = 0;
  private endpointIndex = 0;
  private endpoints: string[];
  private readonly agent: http.Agent;

  constructor(private readonly options: KvClientOptions) {
    if (options.endpoints.length === 0) throw new RaftwalError(RaftwalErrorCode.INVALID_ARGUMENT, "KvClient needs at least one endpoint");
    this.endpoints = [...options.endpoints];
    this.clientId = options.clientId ?? randomUUID();
    this.agent = options.agent ?? new http.Agent({ keepAlive: true, maxSockets: 64 });
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
    const response = await this.request("GET", `/kv/${encodeURIComponent(key)}${options.stale ? "?stale=true" : ""}`, undefined, { accepted: [404], retryable: RETRY_UNAVAILABLE });
    return response.status === 404 ? undefined : response.body;
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
    this.endpoints = [...endpoints];
    this.endpointIndex = Math.max(0, this.endpoints.indexOf(current));
  }

  async status(endpoint: string): Promise<Record<string, unknown>> {
    const response = await send(this.agent, "GET", new URL("/status", endpoint), undefined, {}, this.options.requestTimeoutMs ?? 5000);
    return JSON.parse(response.body.toString()) as Record<string, unknown>;
  }

  close(): void {
    if (!this.options.agent) this.agent.destroy();
  }

  private write(method: string, key: string, body: Buffer | undefined, accepted: number[] = [], query = ""): Promise<KvResponse> {
    const seq = ++this.seq;
    // The same (client id, seq) on every retry: the state machine applies the write once.
    const headers = { "x-raftwal-client-id": this.clientId, "x-raftwal-seq": String(seq) };
    return this.request(method, `/kv/${encodeURIComponent(key)}${query}`, body, { headers, accepted, retryable: RETRY_UNAVAILABLE });
  }

  private async change(method: string, path: string, body?: Buffer): Promise<MembersAnswer> {
    const response = await this.request(method, path, body, {
      headers: body ? { "content-type": "application/json" } : {},
      retryable: changeNotStarted,
      agent: CHANGE_AGENT,
      timeoutMs: this.options.membershipRequestTimeoutMs ?? MEMBERSHIP_REQUEST_TIMEOUT_MS_DEFAULT,
    });
    return JSON.parse(response.body.toString()) as MembersAnswer;
  }

  private async request(method: string, path: string, body: Buffer | undefined, policy: RequestPolicy): Promise<KvResponse> {
    const deadline = Date.now() + (this.options.operationTimeoutMs ?? 15_000);
    let lastError: unknown;
    while (Date.now() < deadline) {
      let url = new URL(path, this.endpoints[this.endpointIndex]);
      try {
        for (let redirects = 0; redirects <= REDIRECTS_MAX; redirects++) {
          const response = await send(policy.agent ?? this.agent, method, url, body, policy.headers ?? {}, policy.timeoutMs ?? this.options.requestTimeoutMs ?? 5000);
          if (response.status === 307 && response.headers.location) {
            url = new URL(response.headers.location);
            continue;
          }
          if (response.status === 200 || policy.accepted?.includes(response.status)) {
            this.remember(url);
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
        this.endpointIndex = (this.endpointIndex + 1) % this.endpoints.length;
      }
      await new Promise((resolve) => setTimeout(resolve, RETRY_DELAY_MS));
    }
    throw lastError instanceof Error ? lastError : new Error(`request failed: ${String(lastError)}`);
  }

  /** Start the next request at the node that answered (usually the leader). */
  private remember(url: URL): void {
    const index = this.endpoints.findIndex((endpoint) => new URL(endpoint).host === url.host);
    if (index >= 0) this.endpointIndex = index;
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

/** One HTTP request with a timeout; resolves with the whole response. */
export function send(
  agent: http.Agent,
  method: string,
  url: URL,
  body: Buffer | undefined,
  headers: Record<string, string>,
  timeoutMs: number,
): Promise<KvResponse> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      url,
      { method, agent, headers: { ...headers, ...(body ? { "content-length": String(body.length) } : {}) }, timeout: timeoutMs },
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
    request.on("timeout", () => request.destroy(new Error(`${method} ${url.href} timed out after ${timeoutMs} ms`)));
    request.on("error", reject);
    request.end(body);
  });
}
