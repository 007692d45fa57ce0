/**
 * A short torture run of each nemesis group against real `raftwal node` processes (the
 * compiled CLI in dist/, which `npm test` builds first): 3 nodes, 20 ms ticks, a small
 * snapshot interval, a few seconds of faults each, about a minute and a half in all.
 * Every run must end with no violation. A failed run's directory (history, node logs,
 * report) is kept; its path is in the report the failure prints.
 *
 * Longer runs: RAFTWAL_TORTURE_SECONDS=60 (safety phase per group), RAFTWAL_TORTURE_SEED
 * to change the seeds, RAFTWAL_TORTURE_KEEP=1 to keep every run directory; or
 * `npm run torture -- --duration 30m`.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { runTorture, type TortureResult } from "../../src/torture/torture.js";
import type { NemesisGroup } from "../../src/torture/nemesis.js";

const SECONDS = Number(process.env.RAFTWAL_TORTURE_SECONDS ?? 6);
const SEED_BASE = Number(process.env.RAFTWAL_TORTURE_SEED ?? 20_240_601);
const KEEP = process.env.RAFTWAL_TORTURE_KEEP === "1";

const results: TortureResult[] = [];
afterEach(async ({ task }) => {
  const passed = task.result?.state !== "fail";
  for (const result of results.splice(0)) if (!KEEP && passed) await rm(result.dir, { recursive: true, force: true });
});

async function run(group: NemesisGroup, seedOffset: number): Promise<TortureResult> {
  let report = "";
  const result = await runTorture({
    nodes: 3,
    durationMs: SECONDS * 1000,
    seed: SEED_BASE + seedOffset,
    groups: [group],
    clients: 4,
    tickMs: 20,
    snapshotEvery: 50,
    keys: 4,
    livenessMs: 1500,
    stepsMax: 2_000_000,
    // Its files are always written; afterEach removes the directory once the test passed.
    keepDir: await mkdtemp(join(tmpdir(), `raftwal-torture-${group}-`)),
    out: (text) => (report += text),
  });
  results.push(result);
  const failed = result.verdicts.filter((verdict) => verdict.status === "fail");
  expect(failed, report).toEqual([]);
  return result;
}

const TIMEOUT_MS = 60_000 + SECONDS * 3000;

/** A count from the report, e.g. reported(report, "repairs from peers completed"). */
function reported(report: string, label: string): number {
  const match = new RegExp(`${label}\\s+(\\d+)`).exec(report);
  return match ? Number(match[1]) : 0;
}

describe("torture: one short run per nemesis (3 node processes)", () => {
  it("kill -9 of the leader, a follower, a majority, every node", async () => {
    const result = await run("kill", 1);
    expect(result.report).toMatch(/kill-/);
  }, TIMEOUT_MS);

  it("SIGSTOP / SIGCONT of the leader", async () => {
    await run("pause", 2);
  }, TIMEOUT_MS);

  it("partitions through the fault hook: isolate, split, bridge", async () => {
    const result = await run("partition", 3);
    expect(result.report).toMatch(/partition-/);
  }, TIMEOUT_MS);

  it("power loss (unsynced writes lost) and torn writes", async () => {
    await run("powerloss", 4);
  }, TIMEOUT_MS);

  it("damaged WAL records, hard state and snapshots are reported at start and repaired from the peers", async () => {
    const result = await run("disk", 5);
    const injected = reported(result.report, "injected");
    expect(injected).toBeGreaterThan(0);
    expect(reported(result.report, "detected at start")).toBeGreaterThan(0);
    expect(reported(result.report, "repairs from peers completed")).toBeGreaterThan(0);
  }, TIMEOUT_MS);

  it("a node kept down past the others' compaction catches up", async () => {
    await run("snapshot", 6);
  }, TIMEOUT_MS);

  it("membership: learners added with --join, promoted, members removed (the leader too), a node replaced on a wiped disk", async () => {
    const result = await run("membership", 7);
    expect(result.report).toMatch(/membership changes\n {2}.*add learner \d+/);
    expect(result.verdicts.find((verdict) => verdict.name === "membership as asked")?.status).toBe("pass");
  }, TIMEOUT_MS);
});
