/**
 * `raftwal leader transfer --to ID`: hands leadership to a voter (Raft thesis 3.10; etcdctl's
 * `move-leader`) through `POST /leader/transfer` (src/kv/operations-api.ts), which the
 * nodes redirect to the leader. Prints one line once the new leader leads; a transfer that
 * does not complete in time prints one line with NODE_ERR_TRANSFER_FAILED and exits 1.
 */
import type { Command } from "commander";
import { parseInteger } from "./arguments.js";
import { addClientOptions, withClient, type ClientFlags } from "./client-options.js";
import type { CliContext } from "./program.js";

const EXAMPLES = `
Examples:
  raftwal leader transfer --to 2            # leadership moved from node 1 to node 2 (term 3)
  raftwal leader transfer --to 3 --json
`;

export function registerLeaderCommand(program: Command, context: CliContext): void {
  const leader = program.command("leader").description("move the cluster's leadership");
  const transfer = addClientOptions(
    leader
      .command("transfer")
      .description("hand leadership to a voter that has caught up (before restarting or removing the leader's machine)")
      .requiredOption("--to <id>", "the voter to hand leadership to", parseInteger(1, Number.MAX_SAFE_INTEGER))
      .option("--json", "the answer as JSON"),
  ).addHelpText("after", EXAMPLES);
  transfer.action(async (flags: { to: number; json?: boolean }) => {
    const answer = await withClient(transfer.opts() as ClientFlags, (client) => client.transferLeader(flags.to));
    const line =
      answer.previousLeader === answer.leader
        ? `node ${answer.leader} already leads (term ${answer.term})`
        : `leadership moved from node ${answer.previousLeader} to node ${answer.leader} (term ${answer.term})`;
    context.io.stdout.write(flags.json ? `${JSON.stringify(answer)}\n` : `${line}\n`);
  });
}
