/**
 * Sockets for peer links: plain TCP, or mutual TLS when the host configures it.
 *
 * With TLS both ends present a certificate and both verify the other's against the
 * configured CA (`requestCert` and an `authorized` check on the server,
 * `rejectUnauthorized` on the client). A peer without a certificate signed by that CA
 * is disconnected before a single byte of it is read: it never reaches the raftwal
 * handshake. The dialler also checks the server's certificate names the address it
 * dialled (Node's default `checkServerIdentity`): give each node's certificate a
 * subjectAltName with the host or IP address peers dial it at.
 */
import net from "node:net";
import tls from "node:tls";

/** PEM-encoded CA certificate(s), this node's certificate and its private key. */
export interface TransportTlsOptions {
  ca: Buffer | string;
  cert: Buffer | string;
  key: Buffer | string;
}

export interface PeerAddress {
  host: string;
  port: number;
}

/** TCP keep-alive probe delay on peer sockets: 10 s, to notice a vanished peer host. */
export const KEEPALIVE_INITIAL_DELAY_MS = 10_000;

export interface PeerServerHandlers {
  /** A connection is open (and, with TLS, its client certificate verified). */
  onSocket(socket: net.Socket): void;
  /** A TLS handshake failed (no certificate, wrong CA, not TLS at all). */
  onTlsError(error: Error, remote: string): void;
}

export function createPeerServer(
  tlsOptions: TransportTlsOptions | undefined,
  handlers: PeerServerHandlers,
  handshakeTimeoutMs: number,
): net.Server {
  if (tlsOptions === undefined) {
    return net.createServer({ noDelay: true }, (socket) => handlers.onSocket(socket));
  }
  // The server requests a certificate and verifies it against `ca`, but enforces the
  // result itself (rejectUnauthorized: false, then the `authorized` check below, before
  // any byte is read) so the log line can say *why* a peer was refused: with
  // rejectUnauthorized: true a TLS 1.3 server only sees "socket hang up".
  const server = tls.createServer(
    { ca: tlsOptions.ca, cert: tlsOptions.cert, key: tlsOptions.key, requestCert: true, rejectUnauthorized: false, handshakeTimeout: handshakeTimeoutMs },
    (socket) => {
      if (!socket.authorized) {
        const presented = Object.keys(socket.getPeerCertificate() ?? {}).length > 0;
        const reason = presented
          ? `client certificate not trusted: ${String(socket.authorizationError)}`
          : "no client certificate presented";
        handlers.onTlsError(new Error(reason), remoteOf(socket));
        socket.destroy();
        return;
      }
      handlers.onSocket(socket);
    },
  );
  server.on("tlsClientError", (error, socket) => {
    handlers.onTlsError(error, remoteOf(socket));
    socket.destroy();
  });
  return server;
}

/**
 * Dials a peer. Returns the socket and the event that means "ready to write":
 * `connect` for TCP, `secureConnect` (the server certificate verified) for TLS.
 */
export function dialPeer(
  address: PeerAddress,
  tlsOptions: TransportTlsOptions | undefined,
): { socket: net.Socket; readyEvent: "connect" | "secureConnect" } {
  if (tlsOptions === undefined) {
    return { socket: net.connect({ host: address.host, port: address.port, noDelay: true }), readyEvent: "connect" };
  }
  const socket = tls.connect({
    host: address.host,
    port: address.port,
    ca: tlsOptions.ca,
    cert: tlsOptions.cert,
    key: tlsOptions.key,
    rejectUnauthorized: true,
  });
  return { socket, readyEvent: "secureConnect" };
}

export function remoteOf(socket: net.Socket): string {
  return `${socket.remoteAddress ?? "?"}:${socket.remotePort ?? "?"}`;
}
