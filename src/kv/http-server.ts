/**
 * The server under the KV API: plain HTTP, or HTTPS with optional client certificates; an
 * optional bearer token every request must carry; and an orderly close that lets the
 * requests in flight finish.
 *
 * Security. Without TLS and a token the API serves anyone who can reach its address
 * (keep it on loopback or a private network). With `tls`, clients connect over HTTPS; with
 * `tls.clientCa` they must also present a certificate signed by that CA, checked during
 * the TLS handshake (a client without one never reaches a route). With `token`, every
 * request must carry `Authorization: Bearer <token>` (compared in constant time), else 401
 * KV_ERR_UNAUTHORIZED. A token sent over plain HTTP travels in clear text: the server
 * refuses to start with a token, without TLS, on an address other than loopback, unless
 * `allowInsecureToken` says so.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { RaftwalError, RaftwalErrorCode } from "../../storage/errors.js";
import { NodeErrorCode } from "../node/errors.js";
import { KvErrorCode } from "./errors.js";
import { errorAnswer } from "./http-errors.js";
import { json, type ApiAddress } from "./http-io.js";

/** TLS for the API (PEM). */
export interface ApiTlsOptions {
  cert: Buffer | string;
  key: Buffer | string;
  /** When set, clients must present a certificate signed by this CA. */
  clientCa?: Buffer | string;
}

export interface ApiServerOptions {
  listen: ApiAddress;
  tls?: ApiTlsOptions;
  /** Every request must carry `Authorization: Bearer <token>`. */
  token?: string;
  /** Allow a token over plain HTTP on an address other than loopback (it travels in clear text). */
  allowInsecureToken?: boolean;
  /** Answers one request (errors it throws are answered by `answerError`). */
  handle(request: http.IncomingMessage, response: http.ServerResponse): Promise<void>;
  answerError(response: http.ServerResponse, error: unknown): void;
}

/** How long an idle keep-alive connection stays open. */
const KEEP_ALIVE_TIMEOUT_MS = 30_000;

export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function digest(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}

export class ApiServer {
  private server: http.Server | undefined;
  private inFlight = 0;
  private closing = false;
  private readonly tokenDigest: Buffer | undefined;

  constructor(private readonly options: ApiServerOptions) {
    if (options.token !== undefined && options.token.length === 0) throw new RaftwalError(RaftwalErrorCode.INVALID_ARGUMENT, "the API token is empty");
    if (options.token !== undefined && !options.tls && !options.allowInsecureToken && !isLoopback(options.listen.host)) {
      throw new RaftwalError(
        RaftwalErrorCode.INVALID_ARGUMENT,
        `an API token over plain HTTP on ${options.listen.host} would travel in clear text: serve the API over HTTPS (apiTls; raftwal node --api-cert and --api-key), listen on loopback, or allow it (apiAllowInsecureToken; --api-insecure-token)`,
      );
    }
    this.tokenDigest = options.token === undefined ? undefined : digest(options.token);
  }

  get scheme(): "http" | "https" {
    return this.options.tls ? "https" : "http";
  }

  async start(): Promise<ApiAddress> {
    const listener = (request: http.IncomingMessage, response: http.ServerResponse) => this.serve(request, response);
    const tls = this.options.tls;
    const server = tls
      ? https.createServer({ keepAlive: true, cert: tls.cert, key: tls.key, ca: tls.clientCa, requestCert: tls.clientCa !== undefined, rejectUnauthorized: tls.clientCa !== undefined }, listener)
      : http.createServer({ keepAlive: true }, listener);
    server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
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

  private serve(request: http.IncomingMessage, response: http.ServerResponse): void {
    if (this.closing) {
      // A request on a connection opened before the close began: refused, and the connection closed after it.
      response.setHeader("connection", "close");
      this.options.answerError(response, new RaftwalError(NodeErrorCode.CLOSED, "the node is shutting down"));
      return;
    }
    if (!this.authorized(request)) {
      const { body } = errorAnswer(new RaftwalError(KvErrorCode.UNAUTHORIZED, "this API needs a bearer token: send Authorization: Bearer <token>"));
      response.setHeader("www-authenticate", 'Bearer realm="raftwal"');
      json(response, 401, body);
      return;
    }
    this.inFlight += 1;
    response.once("close", () => (this.inFlight -= 1));
    this.options.handle(request, response).catch((error: unknown) => this.options.answerError(response, error));
  }

  private authorized(request: http.IncomingMessage): boolean {
    if (this.tokenDigest === undefined) return true;
    const match = /^Bearer (.+)$/.exec(request.headers.authorization ?? "");
    return match !== null && timingSafeEqual(digest(match[1]), this.tokenDigest);
  }

  /**
   * Stops accepting connections, refuses new requests on open ones, waits for the requests
   * in flight (up to `drainTimeoutMs`), then closes every connection.
   */
  async close(drainTimeoutMs = 0): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.closing = true;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const deadline = Date.now() + drainTimeoutMs;
    // Bounded by the deadline.
    while (this.inFlight > 0 && Date.now() < deadline) await sleep(10);
    server.closeAllConnections();
    await closed;
  }
}
