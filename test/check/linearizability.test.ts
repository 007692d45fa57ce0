import { describe, expect, it } from "vitest";
import { RaftwalErrorCode } from "../../src/errors.js";
import { checkLinearizable, type HistoryOperation } from "../../src/check/linearizability.js";
import { op } from "./helpers.js";

const { read, write, del, cas } = op;

function expectBad(history: HistoryOperation[], key = "k") {
  const result = checkLinearizable(history);
  expect(result.ok).toBe(false);
  if (result.ok !== false) throw new Error("unreachable");
  expect(result.key).toBe(key);
  return result;
}

describe("checkLinearizable: known-good histories", () => {
  it("an empty history and a sequential one", () => {
    expect(checkLinearizable([])).toEqual({ ok: true });
    const history = [
      read("a", "k", null, [0, 1]),
      write("a", "k", "1", [2, 3]),
      read("b", "k", "1", [4, 5]),
      cas("a", "k", "1", "2", "ok", [6, 7]),
      cas("b", "k", "1", "3", "mismatch", [8, 9], { current: "2" }),
      del("a", "k", [10, 11], true),
      del("b", "k", [12, 13], false),
      read("a", "k", null, [14, 15]),
      cas("a", "k", "2", "3", "mismatch", [16, 17], { current: null }),
      cas("b", "k", null, "4", "ok", [18, 19]),
      read("a", "k", "4", [20, 21]),
    ];
    expect(checkLinearizable(history)).toEqual({ ok: true });
  });

  it("concurrent overlapping writes and reads may be ordered either way", () => {
    const history = [
      write("a", "k", "1", [0, 10]),
      write("b", "k", "2", [1, 9]),
      read("c", "k", "2", [2, 3]), // 2 took effect early
      read("d", "k", "1", [4, 12]), // then 1
      read("c", "k", "1", [13, 14]),
    ];
    expect(checkLinearizable(history)).toEqual({ ok: true });
    // The other order is fine too.
    expect(checkLinearizable([write("a", "k", "1", [0, 10]), write("b", "k", "2", [1, 9]), read("c", "k", "2", [11, 12])])).toEqual({ ok: true });
    // A read concurrent with a write may see the old or the new value.
    expect(checkLinearizable([write("a", "k", "1", [0, 1]), write("a", "k", "2", [2, 10]), read("b", "k", "1", [3, 4]), read("c", "k", "2", [5, 6])])).toEqual({ ok: true });
  });

  it("touching intervals (equal times) count as concurrent", () => {
    expect(checkLinearizable([write("a", "k", "1", [0, 5]), read("b", "k", null, [5, 6])])).toEqual({ ok: true });
  });

  it("a CAS chain with concurrent contenders where exactly one wins each round", () => {
    const history = [
      cas("a", "k", null, "1", "ok", [0, 2]),
      cas("b", "k", null, "x", "mismatch", [1, 3], { current: "1" }),
      cas("a", "k", "1", "2", "ok", [4, 8]),
      cas("b", "k", "1", "y", "mismatch", [5, 9]),
      read("c", "k", "2", [6, 7]),
      cas("c", "k", "2", "3", "ok", [10, 11]),
      read("a", "k", "3", [12, 13]),
    ];
    expect(checkLinearizable(history)).toEqual({ ok: true });
  });

  it("unknown operations that did take effect, late, and ones that did not", () => {
    const history = [
      write("a", "k", "1", [0, 1]),
      write("a", "k", "lost", [2]), // timed out; never applied
      write("b", "k", "late", [3]), // timed out; applied much later
      read("c", "k", "1", [10, 11]),
      read("c", "k", "late", [100, 101]),
      cas("d", "k", "late", "c1", undefined, [102]), // unknown CAS; applied
      read("c", "k", "c1", [200, 201]),
      del("e", "k", [202]), // unknown delete; not applied
      read("c", "k", "c1", [300, 301]),
      read("f", "k", "whatever", [302], "unknown"), // unknown read: no constraint
    ];
    expect(checkLinearizable(history)).toEqual({ ok: true });
  });

  it("failed operations are ignored", () => {
    expect(checkLinearizable([write("a", "k", "1", [0, 1], "failed"), read("b", "k", null, [2, 3])])).toEqual({ ok: true });
  });
});

describe("checkLinearizable: known-bad histories", () => {
  it("a stale read after a completed write", () => {
    const result = expectBad([write("a", "k", "1", [0, 1]), write("a", "k", "2", [2, 3]), read("b", "k", "1", [4, 5])]);
    expect(result.operations).toHaveLength(3);
    expect(result.explanation).toContain('key "k"');
    expect(result.explanation).toContain('#2 client b [4, 5] read => "1"');
  });

  it("a read of a value never written", () => {
    const result = expectBad([write("a", "k", "1", [0, 1]), read("b", "k", "ghost", [2, 3])]);
    expect(result.operations.map((o) => o.op)).toEqual(["read"]);
    expect(result.explanation).toMatch(/"ghost" was never written/);
  });

  it("a read of a value whose write definitely failed", () => {
    const result = expectBad([write("a", "k", "1", [0, 1], "failed"), read("b", "k", "1", [2, 3])]);
    expect(result.explanation).toMatch(/"1" was never written to this key by an operation that could have taken effect/);
  });

  it("a lost acknowledged write", () => {
    expectBad([write("a", "k", "1", [0, 1]), read("b", "k", null, [2, 3])]);
    expectBad([write("a", "k", "1", [0, 1]), write("a", "k", "2", [2, 3]), read("b", "k", "1", [4, 5]), read("b", "k", "1", [6, 7])]);
  });

  it("two successful CAS from the same expected value", () => {
    const result = expectBad([
      write("a", "k", "0", [0, 1]),
      cas("b", "k", "0", "1", "ok", [2, 5]),
      cas("c", "k", "0", "2", "ok", [3, 6]),
    ]);
    expect(result.operations.filter((o) => o.op === "cas")).toHaveLength(2);
  });

  it("a read going backwards across clients", () => {
    expectBad([
      write("a", "k", "1", [0, 1]),
      write("a", "k", "2", [2, 20]),
      read("b", "k", "2", [3, 4]),
      read("c", "k", "1", [5, 6]),
    ]);
  });

  it("a CAS that reports a mismatch although the value matched", () => {
    expectBad([write("a", "k", "1", [0, 1]), cas("b", "k", "1", "2", "mismatch", [2, 3], { current: "1" })]);
    expectBad([write("a", "k", "1", [0, 1]), cas("b", "k", "1", "2", "mismatch", [2, 3])]);
  });

  it("a delete that claims the key existed when it cannot have", () => {
    expectBad([del("a", "k", [0, 1], true)]);
  });

  it("an unknown write cannot take effect before it was invoked", () => {
    expectBad([read("a", "k", "1", [0, 1]), write("b", "k", "1", [2])]);
  });

  it("explains a violation buried in a long history with a small fragment that contains it", () => {
    const history: HistoryOperation[] = [];
    let t = 0;
    for (let i = 0; i < 300; i++) {
      history.push(write("w", "k", `v${i}`, [t, t + 3]));
      history.push(read("r", "k", `v${i}`, [t + 4, t + 5]));
      t += 10;
    }
    history.push(read("stale", "k", "v100", [t, t + 1])); // #600
    for (let i = 300; i < 310; i++) {
      history.push(write("w", "k", `v${i}`, [t + 2, t + 3]));
      t += 10;
    }
    const result = expectBad(history);
    expect(result.operations.length).toBeLessThanOrEqual(4);
    expect(result.operations).toContain(history[600]);
    expect(result.explanation).toContain("#600 client stale");
  });
});

describe("checkLinearizable: keys are independent", () => {
  it("operations on different keys do not constrain each other", () => {
    // As one register this would be a stale read; as two keys it is fine.
    const history = [write("a", "x", "1", [0, 1]), write("a", "y", "2", [2, 3]), read("b", "x", "1", [4, 5]), read("b", "y", "2", [6, 7])];
    expect(checkLinearizable(history)).toEqual({ ok: true });
  });

  it("reports the key with the violation and ignores the healthy ones", () => {
    const history = [
      write("a", "good", "1", [0, 1]),
      write("a", "bad", "1", [0, 1]),
      write("a", "bad", "2", [2, 3]),
      read("b", "good", "1", [4, 5]),
      read("b", "bad", "1", [4, 5]),
    ];
    const result = expectBad(history, "bad");
    expect(result.operations.every((o) => o.key === "bad")).toBe(true);
  });
});

describe("checkLinearizable: budget and input", () => {
  it("reports an exhausted budget honestly instead of guessing", () => {
    // Many concurrent writes of distinct values, then reads that force a long search.
    const history: HistoryOperation[] = [];
    for (let i = 0; i < 14; i++) history.push(write(`w${i}`, "k", `v${i}`, [0, 100]));
    for (let i = 0; i < 14; i++) history.push(read(`r${i}`, "k", `v${(i * 5) % 14}`, [1 + i * 2, 2 + i * 2]));
    const result = checkLinearizable(history, { stepsMax: 50 });
    expect(result).toEqual({ ok: "unknown", reason: "search budget exhausted", keys: ["k"] });
  });

  it("a definite violation on one key wins over an exhausted budget on another", () => {
    const history: HistoryOperation[] = [];
    for (let i = 0; i < 14; i++) history.push(write(`w${i}`, "busy", `v${i}`, [0, 100]));
    for (let i = 0; i < 14; i++) history.push(read(`r${i}`, "busy", `v${(i * 5) % 14}`, [1 + i * 2, 2 + i * 2]));
    history.push(write("a", "z", "1", [0, 1]), read("b", "z", null, [2, 3]));
    const result = checkLinearizable(history, { stepsMax: 50 });
    expect(result.ok).toBe(false);
  });

  it("proves a violation with a small fragment even when the full search exhausts its budget", () => {
    const history: HistoryOperation[] = [];
    for (let i = 0; i < 2000; i++) {
      // Overlapping writes and reads, each read seeing the latest write.
      history.push(write(`w${i % 4}`, "k", `v${i}`, [i * 10, i * 10 + 35]));
      history.push(read(`r${i % 4}`, "k", `v${i}`, [i * 10 + 36, i * 10 + 37]));
    }
    history.push(read("stale", "k", "v3", [20_100, 20_101])); // #4000
    expect(checkLinearizable(history, { stepsMax: 100_000, explainStepsMax: 0 }).ok).toBe("unknown");
    const full = checkLinearizable(history, { stepsMax: 100_000 });
    expect(full.ok).toBe(false);
    if (full.ok !== false) return;
    expect(full.operations).toContain(history[4000]);
    expect(full.operations.length).toBeLessThanOrEqual(4);
  });

  it("rejects malformed operations with INVALID_ARGUMENT", () => {
    const bad = [
      { ...write("a", "k", "1", [5, 4]) },
      { clientId: "a", key: "k", op: "read", invokedAt: 0, completedAt: 1, outcome: "ok" } as HistoryOperation,
      { clientId: "a", key: "k", op: "write", value: "1", invokedAt: 0, outcome: "ok" } as HistoryOperation,
      { clientId: "a", key: "k", op: "cas", expect: null, value: "1", invokedAt: 0, completedAt: 1, outcome: "ok" } as HistoryOperation,
    ];
    for (const operation of bad) {
      expect(() => checkLinearizable([operation])).toThrow(expect.objectContaining({ code: RaftwalErrorCode.INVALID_ARGUMENT }));
    }
  });
});

describe("checkLinearizable: performance", () => {
  it("checks a few thousand operations across keys, with timeouts, to a definite verdict", () => {
    // 4,000 operations, 8 keys, 6 clients per key overlapping, 5% unknown outcomes. Deterministic LCG.
    let seed = 12345;
    const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const history: HistoryOperation[] = [];
    const state = new Map<string, string | null>();
    for (let i = 0; i < 4000; i++) {
      const key = `k${i % 8}`;
      const at = i * 10; // linearization point
      const times: [number, number] = [at - Math.floor(random() * 40), at + Math.floor(random() * 40)];
      const unknown = random() < 0.05;
      const current = state.get(key) ?? null;
      const roll = random();
      if (roll < 0.4) history.push(read(`c${i % 6}`, key, current, times));
      else if (roll < 0.75) {
        const applied = !unknown || random() < 0.5;
        if (applied) state.set(key, `v${i}`);
        history.push(write(`c${i % 6}`, key, `v${i}`, unknown ? [times[0]] : times));
      } else if (roll < 0.95) {
        const expect = random() < 0.7 ? current : `v${i - 8}`;
        const ok = expect === current;
        if (ok) state.set(key, `v${i}`);
        history.push(cas(`c${i % 6}`, key, expect, `v${i}`, ok ? "ok" : "mismatch", times, ok ? {} : { current }));
      } else {
        state.set(key, null);
        history.push(del(`c${i % 6}`, key, times, current !== null));
      }
    }
    expect(checkLinearizable(history)).toEqual({ ok: true });
  });
});
