/**
 * The options of every command that talks to a cluster's API (`kv`, `member`, `status`,
 * `leader`, `snapshot save`), and the KvClient they make: where the nodes are, TLS and the
 * bearer token, and how long one operation may take.
 */
import { readFileSync } from "node:fs";
import { Option, type Command } from "commander";
import { KvClient, type KvClientOptions } from "../kv/client.js";
import { parseDuration, parseEndpoints } from "./arguments.js";
import { CliError } from "./io.js";
import { CLUSTER_ENDPOINTS_DEFAULT } from "./local-cluster.js";

export interface ClientFlags {
  endpoints: string[];
  cacert?: string;
  cert?: string;
  key?: string;
  tokenFile?: string;
  /** Milliseconds. */
  timeout: number;
}

export const CLIENT_TIMEOUT_MS_DEFAULT = 15_000;

/** Adds the client options to `command` (a group such as `kv`: its subcommands read them with `optsWithGlobals()`). */
export function addClientOptions(command: Command): Command {
  return command
    .addOption(
      new Option("--endpoints <urls>", "comma-separated API URLs of the cluster's nodes").argParser(parseEndpoints).default(CLUSTER_ENDPOINTS_DEFAULT.split(","), CLUSTER_ENDPOINTS_DEFAULT),
    )
    .option("--cacert <file>", "https: the CA certificate (PEM) that signed the API's certificate")
    .option("--cert <file>", "https: this client's certificate (PEM), when the API requires one")
    .option("--key <file>", "https: this client's private key (PEM)")
    .option("--token-file <file>", "a file holding the API's bearer token")
    .addOption(new Option("--timeout <duration>", "how long one operation may take, retries included").argParser(parseDuration).default(CLIENT_TIMEOUT_MS_DEFAULT, "15s"));
}

export function readFileOption(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new CliError(`cannot read ${what} ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

/** A token file holds the token on its first line. */
export function readToken(path: string): string {
  const token = readFileOption(path, "the token file").toString("utf8").split(/\r?\n/)[0].trim();
  if (token === "") throw new CliError(`the token file ${path} is empty`);
  return token;
}

/** The client the flags describe; `extra` adds or overrides options. */
export function clientFromFlags(flags: ClientFlags, extra: Partial<KvClientOptions> = {}): KvClient {
  if ((flags.cert === undefined) !== (flags.key === undefined)) throw new CliError("--cert and --key go together");
  const tls =
    flags.cacert || flags.cert
      ? {
          ...(flags.cacert ? { ca: readFileOption(flags.cacert, "the CA certificate") } : {}),
          ...(flags.cert ? { cert: readFileOption(flags.cert, "the certificate"), key: readFileOption(flags.key!, "the private key") } : {}),
        }
      : undefined;
  return new KvClient({
    endpoints: flags.endpoints,
    operationTimeoutMs: flags.timeout,
    tls,
    token: flags.tokenFile ? readToken(flags.tokenFile) : undefined,
    ...extra,
  });
}

/** Runs `action` with the client of `flags` (and `extra` options), closing it after. */
export async function withClient<T>(flags: ClientFlags, action: (client: KvClient) => Promise<T>, extra: Partial<KvClientOptions> = {}): Promise<T> {
  const client = clientFromFlags(flags, extra);
  try {
    return await action(client);
  } finally {
    client.close();
  }
}
