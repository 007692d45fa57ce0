/**
 * The membership routes of the KV HTTP API: RaftNode's membership API (members,
 * addLearner, promote, removeMember; Raft thesis chapter 4) over HTTP. Every node serves
 * them; a node that is not the leader redirects them to the leader like writes (307, or
 * 503 KV_ERR_NO_LEADER when none is known).
 *
 * | request                                   | answer                                                       |
 * |-------------------------------------------|--------------------------------------------------------------|
 * | `GET /members`                            | 200 the leader's membership (`MembersAnswer`), with each member's replication progress |
 * | `GET /members?stale=true`                 | 200 the answering node's own view, without progress          |
 * | `POST /members` `{"id", "peerAddress", "apiAddress"?}` | adds a learner; 200 with the membership once the change is applied on the leader |
 * | `POST /members/{id}/promote`              | makes a caught-up learner a voter; 200 likewise              |
 * | `DELETE /members/{id}`                    | removes a voter or a learner; 200 likewise                   |
 *
 * A refused change answers with the core's code (http-errors.ts): 409
 * RAFT_ERR_CONFIG_CHANGE_IN_PROGRESS or RAFT_ERR_LEARNER_BEHIND (retry later), 404
 * RAFT_ERR_UNKNOWN_MEMBER, 400 RAFT_ERR_INVALID_CONFIG_CHANGE or RAFT_ERR_LAST_VOTER (never
 * possible as asked), 503 when it did not complete in time (NODE_ERR_TIMEOUT: it may still
 * take effect; `GET /members` tells).
 */
import type http from "node:http";
import { RaftwalError } from "../../storage/errors.js";
import { NotLeaderError } from "../node/errors.js";
import { formatAddress, parseAddress, type MembershipView, type MemberView } from "../node/membership.js";
import type { RaftNode } from "../node/raft-node.js";
import { KvErrorCode } from "./errors.js";
import { booleanParameter, checkQuery } from "./http-target.js";
import { drain, json, readBody, type RedirectToLeader } from "./http-io.js";

/** What `GET /members` and every successful change answer. */
export interface MembersAnswer extends MembershipView {
  /** The id of the node that answered (the leader, unless `?stale=true`). */
  node: number;
  /** The leader that node knows (0: none). */
  leader: number;
  /** The answering node's last log index: a member whose `match` reaches it has caught up. */
  lastIndex: number;
  members: MemberAnswer[];
}

export interface MemberAnswer extends MemberView {
  /** Highest log index known replicated on the member (only in the leader's answer). */
  match?: number;
}

/** Largest body of `POST /members`: one member's id and two addresses. */
const MEMBER_BODY_BYTES_MAX = 4096;

export interface MembersRoutesOptions {
  node: RaftNode<unknown>;
  /** Sends a request on to the leader's API. */
  redirect: RedirectToLeader;
}

export class MembersRoutes {
  constructor(private readonly options: MembersRoutesOptions) {}

  /** `/members` and everything under it. */
  serves(pathname: string): boolean {
    return pathname === "/members" || pathname.startsWith("/members/");
  }

  async handle(request: http.IncomingMessage, response: http.ServerResponse, url: URL): Promise<void> {
    const [, , idText, action, ...rest] = url.pathname.split("/");
    if (idText === undefined) {
      if (request.method === "GET") {
        checkQuery(url.searchParams, ["stale"], "GET /members");
        return this.list(request, response, booleanParameter(url.searchParams, "stale"));
      }
      if (request.method === "POST") return this.change(request, response, async () => ({ add: [parseMember(await readBody(request, { bytesMax: MEMBER_BODY_BYTES_MAX, what: "the member body" }))] }));
      throw methodNotAllowed(request, "/members");
    }
    const id = parseMemberId(idText);
    if (action === undefined) {
      if (request.method === "DELETE") return this.change(request, response, async () => ({ remove: [id] }));
      throw methodNotAllowed(request, "/members/{id}");
    }
    if (action !== "promote" || rest.length > 0) throw new RaftwalError(KvErrorCode.NO_ROUTE, `no route ${request.method} ${url.pathname}`);
    if (request.method === "POST") return this.change(request, response, async () => ({ promote: [id] }));
    throw methodNotAllowed(request, "/members/{id}/promote");
  }

  private async list(request: http.IncomingMessage, response: http.ServerResponse, stale: boolean): Promise<void> {
    await drain(request);
    const { role, leader } = this.options.node.leadership();
    if (role !== "leader" && !stale) return this.options.redirect(request, response, leader);
    json(response, 200, this.answer(this.options.node.members()));
  }

  /** A change, on the leader only; its body is read only there (a redirect resends it). */
  private async change(request: http.IncomingMessage, response: http.ServerResponse, readChange: () => Promise<Parameters<RaftNode<unknown>["changeMembership"]>[0]>): Promise<void> {
    const node = this.options.node;
    const { role, leader } = node.leadership();
    if (role !== "leader") {
      await drain(request);
      return this.options.redirect(request, response, leader);
    }
    const change = await readChange();
    let view: MembershipView;
    try {
      view = await node.changeMembership(change);
    } catch (error) {
      // Thrown before anything was proposed: the leader is elsewhere now.
      if (error instanceof NotLeaderError) return this.options.redirect(request, response, error.leaderId);
      throw error;
    }
    json(response, 200, this.answer(view));
  }

  private answer(view: MembershipView): MembersAnswer {
    const status = this.options.node.status();
    const match = new Map(status.progress.map((progress) => [progress.id, progress.match]));
    return {
      node: status.id,
      leader: status.leader,
      lastIndex: status.lastIndex,
      ...view,
      members: view.members.map((member) => (match.has(member.id) ? { ...member, match: match.get(member.id) } : member)),
    };
  }
}

function methodNotAllowed(request: http.IncomingMessage, path: string): RaftwalError {
  return new RaftwalError(KvErrorCode.METHOD_NOT_ALLOWED, `${request.method} is not supported on ${path}`);
}

function parseMemberId(text: string): number {
  const id = /^\d{1,15}$/.test(text) ? Number(text) : NaN;
  if (!(id >= 1)) throw new RaftwalError(KvErrorCode.BAD_REQUEST, `member id '${text}' is not a positive integer`);
  return id;
}

const MEMBER_BODY_SHAPE = 'the body must be JSON {"id": number, "peerAddress": "host:port", "apiAddress"?: "host:port"}';

/** `{"id", "peerAddress", "apiAddress"?}`, addresses as "host:port" (written back in one canonical form). */
function parseMember(body: Uint8Array): { id: number; peerAddress: string; apiAddress: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(body));
  } catch {
    throw new RaftwalError(KvErrorCode.BAD_REQUEST, MEMBER_BODY_SHAPE);
  }
  const { id, peerAddress, apiAddress } = (parsed ?? {}) as Record<string, unknown>;
  if (typeof id !== "number" || !Number.isSafeInteger(id) || id < 1) throw new RaftwalError(KvErrorCode.BAD_REQUEST, `${MEMBER_BODY_SHAPE}: id must be a positive integer`);
  const address = (value: unknown, name: string): string => {
    const parsedAddress = typeof value === "string" ? parseAddress(value) : undefined;
    if (!parsedAddress) throw new RaftwalError(KvErrorCode.BAD_REQUEST, `${MEMBER_BODY_SHAPE}: ${name} ${JSON.stringify(value)} is not host:port`);
    return formatAddress(parsedAddress);
  };
  return { id, peerAddress: address(peerAddress, "peerAddress"), apiAddress: apiAddress === undefined || apiAddress === "" ? "" : address(apiAddress, "apiAddress") };
}
