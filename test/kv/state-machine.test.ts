import { describe, expect, it } from "vitest";
import { KvStateMachine } from "../../src/kv/state-machine.js";
import { cas, del, entry, get, put, str, text } from "./helpers.js";

describe("KvStateMachine apply", () => {
  it("put, get, overwrite, delete", () => {
    const sm = new KvStateMachine();
    expect(sm.apply(entry(1, put("a", 1, "x", "1")))).toEqual({ status: "ok" });
    expect(str(sm.get("x"))).toBe("1");
    const read = sm.apply(entry(2, get("x")));
    expect(read.status).toBe("ok");
    expect(str((read as { value: Uint8Array }).value)).toBe("1");
    expect(sm.apply(entry(3, put("a", 2, "x", "2")))).toEqual({ status: "ok" });
    expect(str(sm.get("x"))).toBe("2");
    expect(sm.apply(entry(4, del("a", 3, "x")))).toEqual({ status: "ok" });
    expect(sm.get("x")).toBeUndefined();
    expect(sm.apply(entry(5, del("a", 4, "x")))).toEqual({ status: "not-found" });
    expect(sm.apply(entry(6, get("x")))).toEqual({ status: "not-found" });
    expect(sm.appliedIndex()).toBe(6);
  });

  it("CAS: ok, mismatch with the current value, not-found, and expect-absent", () => {
    const sm = new KvStateMachine();
    expect(sm.apply(entry(1, cas("c", 1, "k", "a", "b")))).toEqual({ status: "not-found" });
    expect(sm.get("k")).toBeUndefined();
    expect(sm.apply(entry(2, cas("c", 2, "k", null, "a")))).toEqual({ status: "ok" });
    expect(str(sm.get("k"))).toBe("a");
    expect(sm.apply(entry(3, cas("c", 3, "k", null, "z")))).toEqual({ status: "mismatch", current: text("a") });
    expect(sm.apply(entry(4, cas("c", 4, "k", "x", "z")))).toEqual({ status: "mismatch", current: text("a") });
    expect(str(sm.get("k"))).toBe("a");
    expect(sm.apply(entry(5, cas("c", 5, "k", "a", "b")))).toEqual({ status: "ok" });
    expect(str(sm.get("k"))).toBe("b");
    // An empty value is a value, not absence.
    expect(sm.apply(entry(6, put("c", 6, "e", "")))).toEqual({ status: "ok" });
    expect(sm.apply(entry(7, cas("c", 7, "e", null, "x")))).toEqual({ status: "mismatch", current: text("") });
    expect(sm.apply(entry(8, cas("c", 8, "e", "", "x")))).toEqual({ status: "ok" });
  });

  it("a retried non-idempotent CAS with the same (client, seq) is applied once and returns the first result", () => {
    const sm = new KvStateMachine();
    sm.apply(entry(1, put("w", 1, "counter", "0")));
    expect(sm.apply(entry(2, cas("c", 1, "counter", "0", "1")))).toEqual({ status: "ok" });
    sm.apply(entry(3, put("w", 2, "counter", "0"))); // someone resets it
    // The retry of c/1 would succeed again if re-applied; it must not be.
    expect(sm.apply(entry(4, cas("c", 1, "counter", "0", "1")))).toEqual({ status: "ok" });
    expect(str(sm.get("counter"))).toBe("0");
    // A remembered mismatch is returned as remembered, with the value current back then.
    expect(sm.apply(entry(5, cas("d", 7, "counter", "9", "x")))).toEqual({ status: "mismatch", current: text("0") });
    sm.apply(entry(6, put("w", 3, "counter", "9")));
    expect(sm.apply(entry(7, cas("d", 7, "counter", "9", "x")))).toEqual({ status: "mismatch", current: text("0") });
    expect(str(sm.get("counter"))).toBe("9");
  });

  it("a retried put does not overwrite a newer put from another client", () => {
    const sm = new KvStateMachine();
    sm.apply(entry(1, put("a", 1, "k", "from-a")));
    sm.apply(entry(2, put("b", 1, "k", "from-b")));
    expect(sm.apply(entry(3, put("a", 1, "k", "from-a")))).toEqual({ status: "ok" });
    expect(str(sm.get("k"))).toBe("from-b");
  });

  it("an older seq is rejected as stale and changes nothing; seqs may skip", () => {
    const sm = new KvStateMachine();
    sm.apply(entry(1, put("a", 1, "k", "1")));
    sm.apply(entry(2, put("a", 5, "k", "5")));
    const before = sm.hash();
    expect(sm.apply(entry(3, put("a", 4, "k", "4")))).toEqual({ status: "stale", lastSeq: 5 });
    expect(str(sm.get("k"))).toBe("5");
    expect(sm.session("a")).toEqual({ seq: 5, lastIndex: 2 });
    expect(sm.hash()).not.toBe(before); // only the applied index moved
    expect(sm.apply(entry(4, put("a", 6, "k", "6")))).toEqual({ status: "ok" });
  });

  it("answers undecodable data as invalid on every replica, changing nothing but the applied index", () => {
    const sm = new KvStateMachine();
    sm.apply(entry(1, put("a", 1, "k", "1")));
    const result = sm.apply({ term: 1, index: 2, type: 0, data: new Uint8Array([7, 7, 7]) });
    expect(result.status).toBe("invalid");
    expect((result as { reason: string }).reason).toMatch(/unsupported version 7/);
    expect(sm.appliedIndex()).toBe(2);
    expect(str(sm.get("k"))).toBe("1");
  });

  it("asserts index order: no re-apply, no going back, no empty data; gaps (skipped no-ops) are allowed", () => {
    const sm = new KvStateMachine();
    sm.apply(entry(3, put("a", 1, "k", "1")));
    expect(() => sm.apply(entry(3, put("a", 2, "k", "2")))).toThrow(/out of order/);
    expect(() => sm.apply(entry(2, put("a", 2, "k", "2")))).toThrow(/out of order/);
    expect(() => sm.apply({ term: 1, index: 4, type: 0, data: new Uint8Array(0) })).toThrow(/no-op/);
    sm.apply(entry(5, put("a", 2, "k", "2")));
    expect(sm.appliedIndex()).toBe(5);
  });

  it("returns copies: changing a returned value does not change the state", () => {
    const sm = new KvStateMachine();
    sm.apply(entry(1, put("a", 1, "k", "abc")));
    sm.get("k")![0] = 0;
    const read = sm.apply(entry(2, get("k"))) as { value: Uint8Array };
    read.value[1] = 0;
    expect(str(sm.get("k"))).toBe("abc");
  });
});

describe("KvStateMachine session expiry", () => {
  it("expires a session after sessionExpiryEntries indexes; within the window a retry is de-duplicated", () => {
    const sm = new KvStateMachine({ sessionExpiryEntries: 10 });
    sm.apply(entry(1, put("a", 1, "k", "a1")));
    sm.apply(entry(2, put("b", 1, "k", "b1")));
    // Index 10: 10 - 1 = 9 < 10, still alive; the retry is de-duplicated and refreshes the session.
    expect(sm.apply(entry(10, put("a", 1, "k", "a1")))).toEqual({ status: "ok" });
    expect(str(sm.get("k"))).toBe("b1");
    expect(sm.session("a")).toEqual({ seq: 1, lastIndex: 10 });
    // Index 12: b (last index 2) expires (12 - 2 >= 10), a (10) does not.
    sm.apply(entry(12, get("k")));
    expect(sm.session("b")).toBeUndefined();
    expect(sm.session("a")).toBeDefined();
    // The documented hole: a retry after expiry is a new client and is applied again.
    expect(sm.apply(entry(13, put("b", 1, "k", "b1-again")))).toEqual({ status: "ok" });
    expect(str(sm.get("k"))).toBe("b1-again");
  });

  it("keeps at most sessionExpiryEntries sessions", () => {
    const sm = new KvStateMachine({ sessionExpiryEntries: 50 });
    for (let i = 1; i <= 1000; i++) {
      sm.apply(entry(i, put(`client-${i}`, 1, `k${i % 7}`, String(i))));
      expect(sm.sessionCount()).toBeLessThanOrEqual(50);
    }
    expect(sm.sessionCount()).toBe(50);
  });

  it("is deterministic: replicas that apply the same log, one through a snapshot, hold the same sessions and hash", async () => {
    const log = [];
    let index = 0;
    for (let i = 0; i < 400; i++) {
      index += 1 + (i % 3 === 0 ? 1 : 0); // gaps where leader no-ops were
      const client = `c${(i * 7) % 23}`;
      log.push(entry(index, i % 5 === 0 ? get(`k${i % 4}`) : put(client, i, `k${i % 4}`, `v${i}`)));
    }
    const a = new KvStateMachine({ sessionExpiryEntries: 37 });
    const b = new KvStateMachine({ sessionExpiryEntries: 37 });
    for (const e of log) a.apply(e);
    for (const e of log.slice(0, 150)) b.apply(e);
    const c = new KvStateMachine({ sessionExpiryEntries: 37 });
    await c.restore(b.snapshot());
    for (const e of log.slice(150)) c.apply(e);
    expect(c.hash()).toBe(a.hash());
    expect(c.sessionCount()).toBe(a.sessionCount());
    for (let i = 0; i < 23; i++) expect(c.session(`c${i}`)).toEqual(a.session(`c${i}`));
    // A different window is visible in the hash.
    const d = new KvStateMachine({ sessionExpiryEntries: 38 });
    for (const e of log) d.apply(e);
    expect(d.hash()).not.toBe(a.hash());
  });
});

describe("KvStateMachine hash", () => {
  it("is equal across replicas that applied the same log and differs when any part of the state differs", () => {
    const log = [entry(1, put("a", 1, "x", "1")), entry(2, put("b", 1, "y", "2")), entry(4, cas("a", 2, "x", "1", "3"))];
    const r1 = new KvStateMachine();
    const r2 = new KvStateMachine();
    for (const e of log) {
      r1.apply(e);
      r2.apply(e);
    }
    expect(r1.hash()).toBe(r2.hash());
    expect(r1.hash()).toMatch(/^[0-9a-f]{64}$/);

    const sameDataOtherSessions = new KvStateMachine();
    sameDataOtherSessions.apply(entry(1, put("z", 1, "x", "3")));
    sameDataOtherSessions.apply(entry(4, put("z", 2, "y", "2")));
    expect(sameDataOtherSessions.get("x")).toEqual(r1.get("x"));
    expect(sameDataOtherSessions.get("y")).toEqual(r1.get("y"));
    expect(sameDataOtherSessions.hash()).not.toBe(r1.hash());
  });

  it("does not depend on insertion order", () => {
    const r1 = new KvStateMachine();
    r1.apply(entry(1, put("a", 1, "x", "1")));
    r1.apply(entry(2, put("b", 1, "y", "2")));
    const r2 = new KvStateMachine();
    r2.apply(entry(1, put("b", 1, "y", "2")));
    r2.apply(entry(2, put("a", 1, "x", "1")));
    // Same keys and values, sessions at different indexes: hashes differ only because of sessions.
    expect(r2.hash()).not.toBe(r1.hash());
    const s1 = new KvStateMachine({ sessionExpiryEntries: 1 });
    s1.apply(entry(1, put("a", 1, "x", "1")));
    s1.apply(entry(2, put("b", 1, "y", "2")));
    s1.apply(entry(3, get("x")));
    const s2 = new KvStateMachine({ sessionExpiryEntries: 1 });
    s2.apply(entry(1, put("b", 1, "y", "2")));
    s2.apply(entry(2, put("a", 1, "x", "1")));
    s2.apply(entry(3, get("x")));
    expect(s1.sessionCount()).toBe(0);
    expect(s2.hash()).toBe(s1.hash());
  });
});
