/**
 * One node of the replicated KV service: a KvStateMachine driven by a RaftNode, and the
 * HTTP API in front of it. `raftwal node` and `raftwal cluster` run this.
 */
import type { Logger } from "../node/logger.js";
import { createNode, type PeerConfig, type RaftNode, type RaftNodeOptions } from "../node/raft-node.js";
import { KvHttpApi, type ApiAddress, type ExtraRoutes } from "./http-api.js";
import { KvStateMachine, type KvResult } from "./state-machine.js";

export interface KvPeerConfig extends PeerConfig {
  /** The peer's HTTP API address (for redirects to the leader). */
  api: ApiAddress;
}

export interface KvNodeOptions extends Omit<RaftNodeOptions<KvResult>, "stateMachine" | "peers" | "logger"> {
  peers: KvPeerConfig[];
  logger: Logger;
  /** Where this node's HTTP API listens. Default: its entry's `api` in `peers`. */
  apiListen?: ApiAddress;
  /** Routes to add to the HTTP API, built once the node and the state machine exist. */
  extraRoutes?: (parts: { node: RaftNode<KvResult>; kv: KvStateMachine }) => ExtraRoutes;
}

export interface KvNode {
  readonly node: RaftNode<KvResult>;
  readonly kv: KvStateMachine;
  readonly apiAddress: ApiAddress;
  close(): Promise<void>;
}

export async function startKvNode(options: KvNodeOptions): Promise<KvNode> {
  const kv = new KvStateMachine();
  const self = options.peers.find((peer) => peer.id === options.id);
  const node = await createNode<KvResult>({ ...options, stateMachine: kv });
  const api = new KvHttpApi({
    node,
    kv,
    listen: options.apiListen ?? self?.api ?? { host: "127.0.0.1", port: 0 },
    apiAddresses: new Map(options.peers.map((peer) => [peer.id, peer.api])),
    logger: options.logger.child({ node: options.id, component: "api" }),
    extraRoutes: options.extraRoutes?.({ node, kv }),
  });
  let apiAddress: ApiAddress;
  try {
    apiAddress = await api.start();
  } catch (error) {
    await node.close();
    throw error;
  }
  return {
    node,
    kv,
    apiAddress,
    async close() {
      await api.close();
      await node.close();
    },
  };
}
