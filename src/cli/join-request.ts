/**
 * `raftwal node --join URL`: a new node, once it listens, asks a member's API (following
 * redirects to the leader) to add it as a learner with its peer and API addresses. The
 * leader then sends it the log, a snapshot first (Raft thesis 4.2.1); an operator promotes
 * it once it has caught up (`raftwal member promote`).
 */
import { KvClient, type KvClientOptions } from "../kv/client.js";
import type { Logger } from "../node/logger.js";

/** How long asking to join may take, retries included (no leader yet, a leader not ready). */
export const JOIN_REQUEST_TIMEOUT_MS = 30_000;

export interface JoinRequest {
  /** A member's API, e.g. http://127.0.0.1:7101. */
  url: string;
  id: number;
  peerAddress: string;
  apiAddress: string;
  logger: Logger;
  /** TLS and token for a member's API that requires them. */
  client?: Pick<KvClientOptions, "tls" | "token">;
}

/**
 * Asks the member at `url` to add this node as a learner, unless the membership already
 * lists it (a node added before that restarts with `--join URL` again, its directory still
 * empty): then it only waits for the leader. Rejects with the member's refusal (an id
 * already used or removed before: RAFT_ERR_INVALID_CONFIG_CHANGE) or a failure to reach it.
 */
export async function askToJoin(request: JoinRequest): Promise<void> {
  const { url, id, peerAddress, apiAddress, logger } = request;
  const client = new KvClient({ endpoints: [url], operationTimeoutMs: JOIN_REQUEST_TIMEOUT_MS, ...request.client });
  try {
    const known = (await client.members()).members.find((member) => member.id === id);
    if (known) {
      logger.info("already a member; waiting for the leader to send the log", { via: url, role: known.role });
      return;
    }
    logger.info("asking to be added as a learner", { via: url, peerAddress, apiAddress });
    const answer = await client.addLearner({ id, peerAddress, apiAddress });
    logger.info("added as a learner; the leader sends the log (a snapshot first); promote it once it has caught up", {
      leader: answer.leader,
      configIndex: answer.index,
    });
  } finally {
    client.close();
  }
}
