/**
 * Parsers for command-line values, shared by the commands. Each throws commander's
 * InvalidArgumentError, which the program prints as one line (no stack trace).
 */
import { InvalidArgumentError } from "commander";

export interface HostPort {
  host: string;
  port: number;
}

export function parseInteger(min: number, max: number): (value: string) => number {
  return (value: string) => {
    if (!/^-?\d+$/.test(value)) throw new InvalidArgumentError(`'${value}' is not a whole number`);
    const parsed = Number(value);
    if (!Number.isSafeInteger(parsed) || parsed < min || parsed > max) throw new InvalidArgumentError(`'${value}' is not between ${min} and ${max}`);
    return parsed;
  };
}

export function parseHostPort(value: string): HostPort {
  const match = /^(.+):(\d{1,5})$/.exec(value);
  const port = match ? Number(match[2]) : NaN;
  if (!match || port > 65535) throw new InvalidArgumentError(`'${value}' is not HOST:PORT`);
  return { host: match[1].replace(/^\[(.*)\]$/, "$1"), port };
}

export interface PeerSpec {
  id: number;
  host: string;
  port: number;
  api: HostPort;
}

/** `1=127.0.0.1:7001/127.0.0.1:7101,2=...`: node id = peer address / API address. */
export function parsePeers(value: string): PeerSpec[] {
  const peers = value.split(",").map((part) => {
    const match = /^(\d+)=([^/]+)\/(.+)$/.exec(part.trim());
    if (!match) throw new InvalidArgumentError(`'${part}' is not ID=PEER_HOST:PORT/API_HOST:PORT`);
    const id = Number(match[1]);
    if (!Number.isSafeInteger(id) || id < 1) throw new InvalidArgumentError(`node id '${match[1]}' must be a positive integer`);
    return { id, ...parseHostPort(match[2]), api: parseHostPort(match[3]) };
  });
  const ids = new Set(peers.map((p) => p.id));
  if (ids.size !== peers.length) throw new InvalidArgumentError("a node id appears twice in --peers");
  return peers;
}

export function parseLogLevel(value: string): "debug" | "info" | "warn" | "error" | "silent" {
  if (!["debug", "info", "warn", "error", "silent"].includes(value)) throw new InvalidArgumentError(`'${value}' is not one of debug, info, warn, error, silent`);
  return value as "debug" | "info" | "warn" | "error" | "silent";
}

/** `90`, `90s`, `500ms`, `30m`, `2h` -> milliseconds (1 s to 7 days). */
export function parseDuration(value: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  if (!match) throw new InvalidArgumentError(`'${value}' is not a duration like 60s, 30m or 500ms`);
  const unitMs = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(match[2] ?? "s") as "ms" | "s" | "m" | "h"];
  const ms = Math.round(Number(match[1]) * unitMs);
  if (ms < 1000 || ms > 7 * 24 * 3_600_000) throw new InvalidArgumentError(`'${value}' must be between 1s and 7 days`);
  return ms;
}

/** `URL,URL,...`: API endpoints, each checked (the error names the one that is not a URL). */
export function parseEndpoints(value: string): string[] {
  const endpoints = value.split(",").map((part) => part.trim());
  for (const endpoint of endpoints) {
    let url: URL | undefined;
    try {
      url = new URL(endpoint);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) {
      throw new InvalidArgumentError(`'${endpoint}' is not the URL of a node's API (http://HOST:PORT or https://HOST:PORT)`);
    }
  }
  return endpoints;
}

/** `--read-mode`: how a leader confirms a linearizable read (RaftConfig.readMode). */
export function parseReadMode(value: string): "read-index" | "lease" {
  if (value !== "read-index" && value !== "lease") throw new InvalidArgumentError(`'${value}' is not read-index or lease`);
  return value;
}
