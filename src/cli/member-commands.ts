/**
 * `raftwal member list|add|promote|remove`: the cluster's membership through the KV API's
 * `/members` routes (src/kv/members-api.ts), which follow redirects to the leader. A change
 * prints one line once it is applied on the leader; `--json` prints the whole answer (the
 * membership after the change). A refused change prints one line with its code and exits 1
 * (409 RAFT_ERR_LEARNER_BEHIND: promote again once the learner caught up).
 */
import type { Command } from "commander";
import type { KvClient, MembersAnswer } from "../kv/client.js";
import { formatAddress } from "../node/membership.js";
import { parseHostPort, parseInteger, type HostPort } from "./arguments.js";
import { addClientOptions, withClient, type ClientFlags } from "./client-options.js";
import type { CliContext } from "./program.js";
import { table } from "./text.js";

const EXAMPLES = `
Examples:
  raftwal member list
  raftwal member add 4 127.0.0.1:7004 --api 127.0.0.1:7104
  raftwal member promote 4
  raftwal member remove 3
`;

interface OutputFlags {
  json?: boolean;
}

export function registerMemberCommands(program: Command, context: CliContext): void {
  const member = addClientOptions(program.command("member").description("list and change the cluster's members (requests go to the leader)")).addHelpText("after", EXAMPLES);
  const run = (flags: OutputFlags, request: (client: KvClient) => Promise<MembersAnswer>, describe: (answer: MembersAnswer) => string) => async () => {
    const answer = await withClient(member.opts() as ClientFlags, request);
    context.io.stdout.write(flags.json ? `${JSON.stringify(answer, null, 2)}\n` : describe(answer));
  };
  const memberId = parseInteger(1, Number.MAX_SAFE_INTEGER);
  member
    .command("list")
    .description("every member with its role, addresses and (from the leader) how far its log is replicated")
    .option("--stale", "the answering node's own view, not the leader's")
    .option("--json", "the whole answer as JSON")
    .action((flags: OutputFlags & { stale?: boolean }) => run(flags, (client) => client.members({ stale: flags.stale }), describeMembers)());
  member
    .command("add")
    .description("add a new node as a learner: it gets the log (a snapshot first) and does not vote until promoted")
    .argument("<id>", "the new node's id (never one used before)", memberId)
    .argument("<peer-address>", "the new node's peer address (its --listen), HOST:PORT", parseHostPort)
    .option("--api <host:port>", "the new node's API address (its --api), for redirects to it when it leads", parseHostPort)
    .option("--json", "the membership after the change, as JSON")
    .action((id: number, peer: HostPort, flags: OutputFlags & { api?: HostPort }) => {
      const added = { id, peerAddress: formatAddress(peer), apiAddress: flags.api ? formatAddress(flags.api) : "" };
      const where = `peer ${added.peerAddress}${added.apiAddress ? `, api ${added.apiAddress}` : ""}`;
      return run(flags, (client) => client.addLearner(added), (answer) => `added node ${id} as a learner (${where}); ${describeChange(answer)}\n`)();
    });
  member
    .command("promote")
    .description("make a learner that has caught up a voter")
    .argument("<id>", "the learner's id", memberId)
    .option("--json", "the membership after the change, as JSON")
    .action((id: number, flags: OutputFlags) => run(flags, (client) => client.promote(id), (answer) => `promoted node ${id} to voter; ${describeChange(answer)}\n`)());
  member
    .command("remove")
    .description("remove a voter or a learner (a running removed node stops by itself)")
    .argument("<id>", "the member's id", memberId)
    .option("--json", "the membership after the change, as JSON")
    .action((id: number, flags: OutputFlags) => run(flags, (client) => client.removeMember(id), (answer) => `removed node ${id}; ${describeChange(answer)}\n`)());
}

/** "voters 1,2,4 learners 5 (configuration index 14)". */
function describeChange(answer: MembersAnswer): string {
  const ids = (role: string) => answer.members.filter((member) => member.role === role).map((member) => member.id);
  const learners = ids("learner");
  return `voters ${ids("voter").join(",")}${learners.length > 0 ? ` learners ${learners.join(",")}` : ""} (configuration index ${answer.index})`;
}

/** The header line, then one row per member; MATCH and LAG (entries behind the leader's log) only in the leader's answer. */
function describeMembers(answer: MembersAnswer): string {
  const state = `${answer.committed ? "committed" : "not committed yet"}${answer.joint ? ", joint: being left" : ""}`;
  const source = answer.node === answer.leader ? `leader ${answer.leader}` : `node ${answer.node} (leader ${answer.leader || "unknown"})`;
  const rows = [["ID", "ROLE", "PEER", "API", "MATCH", "LAG"]];
  for (const member of answer.members) {
    const match = member.match === undefined ? "-" : String(member.match);
    const lag = member.match === undefined ? "-" : String(answer.lastIndex - member.match);
    rows.push([String(member.id), member.role, member.peerAddress, member.apiAddress || "-", match, lag]);
  }
  return `${source}, last index ${answer.lastIndex}; configuration index ${answer.index} (${state})\n${table(rows)}`;
}
