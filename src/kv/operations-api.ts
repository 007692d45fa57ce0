/**
 * Operator routes of the KV HTTP API: moving leadership and taking a backup.
 *
 * | request                           | answer                                                        |
 * |-----------------------------------|---------------------------------------------------------------|
 * | `POST /leader/transfer?to={id}`   | hands leadership to voter `id` (Raft thesis 3.10); 200 `{"leader", "previousLeader", "term"}` once `id` leads. On a follower: 307 to the leader |
 * | `GET /snapshot`                   | a backup of the state (backup-format.ts), streamed; consistent: taken after a linearizable read barrier, so it holds every write acknowledged before the request |
 *
 * A transfer asked of the leader itself answers at once. One that does not complete in
 * LEADER_TRANSFER_TIMEOUT_ELECTIONS election timeouts (the target is behind or cut off;
 * the core abandons a transfer after one) answers 503 NODE_ERR_TRANSFER_FAILED with the
 * leader that is in place: ask again.
 */
import type http from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { RaftwalError } from "../../storage/errors.js";
import { NodeErrorCode } from "../node/errors.js";
import { electionTimeoutTicksOf, TICK_MS_DEFAULT } from "../node/options.js";
import type { RaftNode } from "../node/raft-node.js";
import { encodeBackup, type BackupHeader } from "./backup-format.js";
import { KvErrorCode } from "./errors.js";
import { drain, json, type RedirectToLeader } from "./http-io.js";
import { checkQuery, integerParameter, type RequestTarget } from "./http-target.js";
import type { KvResult, KvStateMachine } from "./state-machine.js";

/** A transfer gets this many election timeouts to complete. */
export const LEADER_TRANSFER_TIMEOUT_ELECTIONS = 2;
/** The payload format of the KV service's backups. */
export const KV_BACKUP_PAYLOAD_FORMAT = "raftwal-kv/1";

export interface OperationsRoutesOptions {
  node: RaftNode<KvResult>;
  kv: KvStateMachine;
  clusterId: string;
  /** Node timing, to bound how long a transfer may take. */
  tickMs?: number;
  electionTimeoutTicks?: number;
  redirect: RedirectToLeader;
}

export class OperationsRoutes {
  constructor(private readonly options: OperationsRoutesOptions) {}

  serves(rawPath: string): boolean {
    return rawPath === "/leader/transfer" || rawPath === "/snapshot";
  }

  async handle(request: http.IncomingMessage, response: http.ServerResponse, target: RequestTarget): Promise<void> {
    const route = `${request.method} ${target.rawPath}`;
    if (route === "POST /leader/transfer") return this.transfer(request, response, target);
    if (route === "GET /snapshot") return this.snapshot(request, response, target);
    throw new RaftwalError(KvErrorCode.METHOD_NOT_ALLOWED, `${request.method} is not supported on ${target.rawPath}`);
  }

  private async transfer(request: http.IncomingMessage, response: http.ServerResponse, target: RequestTarget): Promise<void> {
    checkQuery(target.query, ["to"], "POST /leader/transfer");
    const to = integerParameter(target.query, "to", { min: 1, max: Number.MAX_SAFE_INTEGER, fallback: 0 });
    if (to === 0) throw new RaftwalError(KvErrorCode.BAD_REQUEST, "POST /leader/transfer needs ?to={id}: the voter to hand leadership to");
    await drain(request);
    const node = this.options.node;
    const { role, leader } = node.leadership();
    if (role !== "leader") return this.options.redirect(request, response, leader);
    const previousLeader = node.status().id;
    node.transferLeadership(to);
    const tickMs = this.options.tickMs ?? TICK_MS_DEFAULT;
    const timeoutMs = LEADER_TRANSFER_TIMEOUT_ELECTIONS * electionTimeoutTicksOf(this.options) * tickMs;
    const deadline = Date.now() + timeoutMs;
    // Bounded by the deadline; the core abandons the transfer after an election timeout.
    while (node.leadership().leader !== to && Date.now() < deadline) await sleep(tickMs);
    const now = node.leadership().leader;
    if (now !== to) {
      throw new RaftwalError(
        NodeErrorCode.TRANSFER_FAILED,
        `leadership did not move to node ${to} within ${timeoutMs} ms (it may be behind or unreachable); the leader is ${now === 0 ? "unknown (an election)" : `node ${now}`}`,
      );
    }
    json(response, 200, { leader: to, previousLeader, term: node.status().term });
  }

  /**
   * The backup: a linearizable read barrier first (every write acknowledged before the
   * request is applied here), then the state captured at once and streamed.
   */
  private async snapshot(request: http.IncomingMessage, response: http.ServerResponse, target: RequestTarget): Promise<void> {
    checkQuery(target.query, [], "GET /snapshot");
    await drain(request);
    const { node, kv } = this.options;
    if (node.leadership().leader === 0) throw new RaftwalError(KvErrorCode.NO_LEADER, "no leader is known; retry shortly");
    await node.read();
    // Captured in one turn of the event loop: the state, its applied index and the term.
    const payload = kv.snapshot();
    const status = node.status();
    const header: BackupHeader = {
      // The node's applied index may trail the state machine's by an entry being applied, or lead it by
      // entries that are not the application's (no-ops, configurations): either way the state is at the larger.
      index: Math.max(kv.appliedIndex(), status.appliedIndex),
      term: status.term,
      clusterId: this.options.clusterId,
      nodeId: status.id,
      members: node.members().members.map((member) => ({ id: member.id, role: member.role, peerAddress: member.peerAddress, apiAddress: member.apiAddress })),
      createdAt: new Date().toISOString(),
      payloadFormat: KV_BACKUP_PAYLOAD_FORMAT,
    };
    response.writeHead(200, { "content-type": "application/octet-stream", "x-raftwal-snapshot-index": String(header.index) });
    for await (const chunk of encodeBackup(header, payload)) {
      if (response.destroyed) return; // the client went away
      if (!response.write(chunk)) {
        await new Promise((resolve) => {
          response.once("drain", resolve);
          response.once("close", resolve);
        });
      }
    }
    response.end();
  }
}
