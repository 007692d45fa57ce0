/**
 * Crash simulation, property-based and seeded: random sequences of append /
 * truncate-suffix / compact / crash (losing unsynced data, optionally tearing the last
 * write), checked against a model of what was durably acknowledged.
 *
 * The model: every acknowledged call is applied to it. A call that failed (its fsync
 * failed, then the machine crashed keeping a random prefix of the unsynced bytes) may
 * or may not survive: after reopening, the WAL must equal the model either without or
 * with that one call, and never anything else (no damaged or partial batch).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MemoryFileSystem } from "../../storage/fs/memory-file-system.js";
import { Wal } from "../../storage/wal/index.js";
import { DIR, applyOp, call, entry, lastIndex, snapshot, termAt, type Model, type Op } from "./wal-helpers.js";

const SEED = 0x5eed_0a1;
const RUNS = 40;
const OPTIONS = { segmentSizeBytes: 64 * 1024, cacheEntriesMax: 16 };

/** A command, with its random choices drawn up front (so fast-check can shrink them). */
type Command =
  | { kind: "append"; back: number; count: number; bumpTerm: boolean; size: number }
  | { kind: "truncate"; back: number }
  | { kind: "compact"; forward: number; mismatch: boolean }
  | { kind: "crash"; failLast: boolean; keepBytes: number };

const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant("append" as const), back: fc.nat(4), count: fc.integer({ min: 1, max: 40 }), bumpTerm: fc.boolean(), size: fc.nat(600) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("truncate" as const), back: fc.nat(6) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("compact" as const), forward: fc.nat(120), mismatch: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("crash" as const), failLast: fc.boolean(), keepBytes: fc.nat(3_000) }) },
);

/** Turns a command into a concrete call valid for the current model. */
function concrete(model: Model, cmd: Command, term: number): Op | undefined {
  const last = lastIndex(model);
  if (cmd.kind === "append" || cmd.kind === "crash") {
    const back = cmd.kind === "append" ? cmd.back : 0;
    const first = Math.max(model.compactedIndex + 1, last + 1 - back);
    const count = cmd.kind === "append" ? cmd.count : 20;
    const size = cmd.kind === "append" ? cmd.size : 100;
    const entries = Array.from({ length: count }, (_, k) => entry(first + k, term, (size + k * 13) % 601));
    return { kind: "append", entries };
  }
  if (cmd.kind === "truncate") {
    const from = Math.max(model.compactedIndex + 1, last + 1 - cmd.back);
    return { kind: "truncate", from };
  }
  const index = model.compactedIndex + 1 + cmd.forward;
  const known = termAt(model, index);
  return { kind: "compact", index, term: cmd.mismatch || known === undefined ? term : known };
}

describe("crash simulation (property-based, seeded)", () => {
  it("after any sequence of calls and crashes, the log is exactly what was acknowledged (plus, possibly, the one call in flight)", async () => {
    console.log(`wal crash property: fast-check seed ${SEED}, ${RUNS} runs`);
    let tornTails = 0;
    let failedCalls = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(command, { minLength: 1, maxLength: 40 }), async (commands) => {
        const fs = new MemoryFileSystem();
        let wal = await Wal.open(DIR, { fs, ...OPTIONS });
        let model: Model = { compactedIndex: 0, compactedTerm: 0, entries: [] };
        let term = 1;
        for (const cmd of commands) {
          if (cmd.kind === "append" && cmd.bumpTerm) term++;
          const op = concrete(model, cmd, term);
          if (cmd.kind !== "crash") {
            await call(wal, op!);
            model = applyOp(model, op!);
            expect(snapshot(wal)).toEqual(model);
            continue;
          }
          // Crash: optionally with one call whose fsync fails, tearing its batch.
          let inFlight: Op | undefined;
          if (cmd.failLast) {
            // The fault hits the next sync of any segment file: usually this call's batch,
            // sometimes a spare being preallocated (then the call may succeed).
            fs.failNextSync(".wal");
            const outcome = await call(wal, op!).then(
              () => undefined,
              (error: unknown) => error,
            );
            if (outcome === undefined) {
              model = applyOp(model, op!);
            } else {
              expect(outcome).toMatchObject({ code: "WAL_ERR_FAILED" });
              inFlight = op;
            }
            expect(snapshot(wal)).toEqual(model);
          }
          fs.crash({ keepUnsyncedBytes: () => cmd.keepBytes });
          wal = await Wal.open(DIR, { fs, ...OPTIONS });
          if (wal.recovery.tornTail) tornTails++;
          if (inFlight) failedCalls++;
          const found = snapshot(wal);
          if (inFlight && !sameModel(found, model)) {
            // The whole failed batch reached the disk: it is there, complete.
            model = applyOp(model, inFlight);
          }
          expect(found).toEqual(model);
          for (let index = model.compactedIndex; index <= lastIndex(model); index++) expect(wal.term(index)).toBe(termAt(model, index));
        }
        await wal.close();
        // A final clean reopen agrees too.
        const last = await Wal.open(DIR, { fs, ...OPTIONS });
        expect(snapshot(last)).toEqual(model);
        expect(last.recovery.tornTail).toBeUndefined();
        await last.close();
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
    console.log(`wal crash property: ${failedCalls} calls failed in flight, ${tornTails} torn tails cut`);
    // The workload really exercised torn tails, not only clean crashes.
    expect(tornTails).toBeGreaterThan(5);
  });

  it.each([
    ["deletion", "remove", 0],
    ["recycling", "rename", 4],
  ] as const)("a crash between a durable compact record and the segment %s is finished at the next open", async (_what, failing, recycledSegmentsMax) => {
    // A file system whose next remove() or rename() fails: retiring segments after the compact record does not happen.
    class FailingNames extends MemoryFileSystem {
      fail: "remove" | "rename" | undefined;
      private check(operation: "remove" | "rename", path: string): void {
        if (this.fail !== operation) return;
        this.fail = undefined;
        throw Object.assign(new Error(`EIO: simulated ${operation} failure on ${path}`), { code: "EIO" });
      }
      override async remove(path: string): Promise<void> {
        this.check("remove", path);
        return super.remove(path);
      }
      override async rename(from: string, to: string): Promise<void> {
        this.check("rename", from);
        return super.rename(from, to);
      }
    }
    const fs = new FailingNames();
    const segmentNames = async (): Promise<string[]> => (await fs.list(DIR)).filter((name) => name.startsWith("segment-"));
    const wal = await Wal.open(DIR, { fs, ...OPTIONS, recycledSegmentsMax });
    for (let i = 1; i <= 2000; i += 50) await wal.append(Array.from({ length: 50 }, (_, k) => entry(i + k, 1, 100)));
    const before = await segmentNames();
    fs.fail = failing;
    await wal.compact(1500, 1); // durable; retiring failed and made the instance refuse writes
    expect(wal.failed()?.message).toContain(failing);
    expect(await segmentNames()).toEqual(before);
    fs.crash();
    const again = await Wal.open(DIR, { fs, ...OPTIONS, recycledSegmentsMax });
    expect([again.firstIndex(), again.lastIndex()]).toEqual([1501, 2000]);
    const after = await segmentNames();
    expect(after.length).toBeLessThan(before.length);
    const recycled = (await fs.list(DIR)).filter((name) => name.startsWith("recycled-"));
    expect(recycled.length).toBe(Math.min(recycledSegmentsMax, before.length - after.length));
    expect(again.entries(1501, 2001, Infinity)).toHaveLength(500);
    await again.close();
  });
});

function sameModel(a: Model, b: Model): boolean {
  try {
    expect(a).toEqual(b);
    return true;
  } catch {
    return false;
  }
}
