import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { KvCommand } from "../../src/kv/command.js";
import { KvStateMachine, type KvResult } from "../../src/kv/state-machine.js";
import { entry, text } from "./helpers.js";

/** The obvious model: a Map of strings and, per client, the last seq and its result. No expiry. */
class Model {
  data = new Map<string, string>();
  sessions = new Map<string, { seq: number; result: KvResult }>();

  apply(command: KvCommand): KvResult {
    if (command.op === "get") {
      const value = this.data.get(command.key);
      return value === undefined ? { status: "not-found" } : { status: "ok", value: text(value) };
    }
    const session = this.sessions.get(command.clientId);
    if (session && command.seq < session.seq) return { status: "stale", lastSeq: session.seq };
    if (session && command.seq === session.seq) return session.result;
    const current = this.data.get(command.key);
    const dec = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
    let result: KvResult;
    if (command.op === "put") {
      this.data.set(command.key, dec(command.value));
      result = { status: "ok" };
    } else if (command.op === "delete") {
      result = current === undefined ? { status: "not-found" } : { status: "ok" };
      this.data.delete(command.key);
    } else if (command.expect === null) {
      if (current === undefined) {
        this.data.set(command.key, dec(command.value));
        result = { status: "ok" };
      } else result = { status: "mismatch", current: text(current) };
    } else if (current === undefined) result = { status: "not-found" };
    else if (current !== dec(command.expect)) result = { status: "mismatch", current: text(current) };
    else {
      this.data.set(command.key, dec(command.value));
      result = { status: "ok" };
    }
    this.sessions.set(command.clientId, { seq: command.seq, result });
    return result;
  }
}

const step = fc.record({
  client: fc.constantFrom("a", "b", "c"),
  seqMove: fc.constantFrom("next", "next", "next", "skip", "retry", "retry", "stale"),
  op: fc.constantFrom("put", "delete", "cas", "cas-absent", "get"),
  key: fc.constantFrom("x", "y", "z"),
  value: fc.constantFrom("", "1", "2", "3"),
  expect: fc.constantFrom("", "1", "2", "3"),
  gap: fc.nat(2),
});

describe("KvStateMachine against a simple model (property)", () => {
  it("returns the model's result for every command and ends in the model's state, through snapshots too", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 120 }), fc.nat(119), async (steps, snapshotAt) => {
        let sm = new KvStateMachine();
        const model = new Model();
        const lastSeq = new Map<string, number>();
        let index = 0;
        for (let i = 0; i < steps.length; i++) {
          const s = steps[i];
          const last = lastSeq.get(s.client) ?? 0;
          const seq = s.seqMove === "next" ? last + 1 : s.seqMove === "skip" ? last + 3 : s.seqMove === "retry" ? Math.max(1, last) : Math.max(1, last - 1);
          lastSeq.set(s.client, Math.max(last, seq));
          const command: KvCommand =
            s.op === "get"
              ? { op: "get", key: s.key }
              : s.op === "put"
                ? { op: "put", clientId: s.client, seq, key: s.key, value: text(s.value) }
                : s.op === "delete"
                  ? { op: "delete", clientId: s.client, seq, key: s.key }
                  : { op: "cas", clientId: s.client, seq, key: s.key, expect: s.op === "cas-absent" ? null : text(s.expect), value: text(s.value) };
          index += 1 + s.gap;
          expect(sm.apply(entry(index, command))).toEqual(model.apply(command));
          if (i === snapshotAt) {
            const restored = new KvStateMachine();
            await restored.restore(sm.snapshot());
            expect(restored.hash()).toBe(sm.hash());
            sm = restored;
          }
        }
        expect(sm.size()).toBe(model.data.size);
        for (const [key, value] of model.data) expect(new TextDecoder().decode(sm.get(key))).toBe(value);
        for (const [client, session] of model.sessions) expect(sm.session(client)?.seq).toBe(session.seq);
      }),
      { seed: 20240611, numRuns: 300 },
    );
  });
});
