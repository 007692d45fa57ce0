/**
 * One node of the replicated KV service: a KvStateMachine driven by a RaftNode, and the
 * HTTP API in front of it. `raftwal node` and `raftwal cluster` run this.
 */
import type { Logger } from "../node/logger.js";
import { formatAddress, parseAddress } from "../node/membership.js";
import { PROPOSAL_TIMEOUT_MS_DEFAULT, type PeerConfig, type RaftNodeOptions } from "../node/options.js";
import { createNode, type RaftNode } from "../node/raft-node.js";
import { KvHttpApi, type ApiAddress, type ApiTlsOptions, type ExtraRoutes } from "./http-api.js";
import { KvStateMachine, type KvResult } from "./state-machine.js";

export interface KvPeerConfig extends PeerConfig {
  /** The member's HTTP API address (replicated with the configuration, for redirects to the leader). */
  api: ApiAddress;
}

export interface KvNodeOptions extends Omit<RaftNodeOptions<KvResult>, "stateMachine" | "peers" | "logger"> {
  /** The founding members, read only to bootstrap a new cluster (initialClusterState "new"). */
  peers?: KvPeerConfig[];
  logger: Logger;
  /**
   * Where this node's HTTP API listens. Default: its API address in the configuration (or
   * `peers`; or, when storage damage took every configuration naming it, its data
   * directory's MEMBER file).
   */
  apiListen?: ApiAddress;
  /** Routes to add to the HTTP API, built once the node and the state machine exist. */
  extraRoutes?: (parts: { node: RaftNode<KvResult>; kv: KvStateMachine }) => ExtraRoutes;
  /** HTTPS for the API, with client certificates required when `clientCa` is set (http-server.ts). */
  apiTls?: ApiTlsOptions;
  /** A bearer token every API request must carry. */
  apiToken?: string;
  /** Allow the token over plain HTTP on an address other than loopback (it travels in clear text). */
  apiAllowInsecureToken?: boolean;
}

export interface KvNode {
  readonly node: RaftNode<KvResult>;
  readonly kv: KvStateMachine;
  readonly apiAddress: ApiAddress;
  /** "http" or "https". */
  readonly apiScheme: "http" | "https";
  /**
   * Stops in order: the API stops accepting requests and lets those in flight finish, the
   * node finishes its proposals and reads, saves its commit index and closes its storage
   * (each step waits up to `drainTimeoutMs`, default the proposal timeout).
   */
  close(options?: { drainTimeoutMs?: number }): Promise<void>;
}

export async function startKvNode(options: KvNodeOptions): Promise<KvNode> {
  const kv = new KvStateMachine();
  const peers = options.peers?.map((peer) => ({ ...peer, apiAddress: formatAddress(peer.api) }));
  const node = await createNode<KvResult>({ ...options, peers, stateMachine: kv });
  const apiAddressOf = (id: number): ApiAddress | undefined => {
    const member = node.members().members.find((m) => m.id === id);
    return member ? parseAddress(member.apiAddress) : undefined;
  };
  let api: KvHttpApi;
  let apiAddress: ApiAddress;
  try {
    api = new KvHttpApi({
      node,
      kv,
      listen: options.apiListen ?? parseAddress(node.self()?.apiAddress ?? "") ?? { host: "127.0.0.1", port: 0 },
      apiAddressOf,
      logger: options.logger.child({ node: options.id, component: "api" }),
      extraRoutes: options.extraRoutes?.({ node, kv }),
      tls: options.apiTls,
      token: options.apiToken,
      allowInsecureToken: options.apiAllowInsecureToken,
      tickMs: options.tickMs,
      electionTimeoutTicks: options.electionTimeoutTicks,
    });
    apiAddress = await api.start();
  } catch (error) {
    await node.close({ drainTimeoutMs: 0 });
    throw error;
  }
  return {
    node,
    kv,
    apiAddress,
    apiScheme: options.apiTls ? "https" : "http",
    async close(closeOptions = {}) {
      const drainTimeoutMs = closeOptions.drainTimeoutMs ?? options.proposalTimeoutMs ?? PROPOSAL_TIMEOUT_MS_DEFAULT;
      await api.close(drainTimeoutMs);
      await node.close({ drainTimeoutMs });
    },
  };
}
