/**
 * `raftwal torture`: the crash-recovery torture suite (src/torture/TORTURE.md).
 * Prints the seed first, a progress line on stderr while it runs, the report on stdout,
 * and exits non-zero when any check finds a violation.
 */
import { InvalidArgumentError, Option, type Command } from "commander";
import { runTorture } from "../torture/torture.js";
import { ALL_NEMESIS_GROUPS, parseNemesisGroups, type NemesisGroup } from "../torture/nemesis.js";
import { parseDuration, parseInteger } from "./arguments.js";
import { ExitCode } from "./io.js";
import type { CliContext } from "./program.js";

/** Moved to arguments.ts (other commands take durations too); exported here as before. */
export { parseDuration };

function parseGroups(value: string): NemesisGroup[] {
  try {
    return parseNemesisGroups(value);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

interface TortureFlags {
  nodes: number;
  duration: number;
  seed?: number;
  nemesis: NemesisGroup[];
  clients: number;
  keep?: string;
  tickMs: number;
  snapshotEvery: number;
  keys: number;
  walSegmentBytes: number;
}

export function registerTortureCommand(program: Command, context: CliContext): void {
  program
    .command("torture")
    .description("run a local cluster under load while killing, pausing, partitioning and damaging it; check linearizability, durability and convergence")
    .option("--nodes <n>", "cluster size", parseInteger(3, 9), 3)
    .addOption(new Option("--duration <time>", "length of the fault (safety) phase: 60s, 30m, ...").argParser(parseDuration).default(60_000, "60s"))
    .option("--seed <n>", "seed of the fault schedule and workload (printed first; replays a run)", parseInteger(1, 2 ** 32 - 1))
    .addOption(new Option("--nemesis <list>", `comma-separated: ${ALL_NEMESIS_GROUPS.join(",")} (or all)`).argParser(parseGroups).default([...ALL_NEMESIS_GROUPS], "all"))
    .option("--clients <n>", "concurrent client workers", parseInteger(1, 256), 8)
    .option("--keep <dir>", "keep the run directory (history, node logs, report) here; default: a temp dir kept only on failure")
    .option("--tick-ms <ms>", "Raft tick of the nodes", parseInteger(1, 10_000), 20)
    .option("--snapshot-every <n>", "odd-numbered nodes snapshot every N applied entries, even-numbered ones every 20 N (long logs)", parseInteger(1, 2 ** 31), 100)
    .option("--keys <n>", "number of keys the clients share", parseInteger(1, 1000), 5)
    .option("--wal-segment-bytes <n>", "WAL segment size of the nodes (small: sealed segments to damage)", parseInteger(65_536, 2 ** 30), 65_536)
    .action(async (flags: TortureFlags) => {
      const stderr = context.io.stderr;
      const tty = (stderr as NodeJS.WriteStream).isTTY === true;
      let lastLineAt = 0;
      const result = await runTorture({
        nodes: flags.nodes,
        durationMs: flags.duration,
        seed: flags.seed,
        groups: flags.nemesis,
        clients: flags.clients,
        keepDir: flags.keep,
        tickMs: flags.tickMs,
        snapshotEvery: flags.snapshotEvery,
        keys: flags.keys,
        walSegmentBytes: flags.walSegmentBytes,
        out: (text) => context.io.stdout.write(text),
        progress: (line) => {
          if (tty) stderr.write(`\r\x1b[K${line}`);
          else if (Date.now() - lastLineAt >= 5000) {
            lastLineAt = Date.now();
            stderr.write(`${line}\n`);
          }
        },
        replayCommand: `raftwal torture --nodes ${flags.nodes} --duration ${flags.duration / 1000}s --nemesis ${flags.nemesis.join(",")} --clients ${flags.clients} --tick-ms ${flags.tickMs} --snapshot-every ${flags.snapshotEvery} --keys ${flags.keys} --wal-segment-bytes ${flags.walSegmentBytes}`,
      });
      if (tty) stderr.write("\n");
      if (!result.ok) context.exitCode = ExitCode.ERROR;
    });
}
