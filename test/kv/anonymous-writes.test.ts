/** Writes without a session (no client id, seq 0): applied, remembered nowhere (issue 11: no session each). */
import { describe, expect, it } from "vitest";
import { decodeCommand, encodeCommand } from "../../src/kv/command.js";
import { KvStateMachine } from "../../src/kv/state-machine.js";
import { EntryType } from "../../src/proto/schema.js";

const value = new TextEncoder().encode("v");
const entry = (index: number, data: Uint8Array) => ({ index, term: 1, type: EntryType.NORMAL, data });

describe("anonymous writes", () => {
  it("encode and decode with an empty client id and seq 0; half a session is refused", () => {
    const anonymous = { op: "put" as const, clientId: "", seq: 0, key: "k", value };
    expect(decodeCommand(encodeCommand(anonymous))).toEqual(anonymous);
    expect(() => encodeCommand({ ...anonymous, seq: 3 })).toThrow(/needs a client id/);
    expect(() => encodeCommand({ ...anonymous, clientId: "c" })).toThrow(/seq/);
  });

  it("cost no session in the state machine, and are applied each time they are sent", () => {
    const kv = new KvStateMachine();
    for (let i = 1; i <= 100; i++) kv.apply(entry(i, encodeCommand({ op: "put", clientId: "", seq: 0, key: `k${i}`, value })));
    expect(kv.session("")).toBeUndefined();
    expect(kv.sessionCount()).toBe(0);
    const snapshotWithout = kv.hash();
    kv.apply(entry(101, encodeCommand({ op: "put", clientId: "c1", seq: 1, key: "k", value })));
    expect(kv.session("c1")).toMatchObject({ seq: 1 });
    // Two identical anonymous CAS writes: both applied (no de-duplication without a session).
    const cas = { op: "cas" as const, clientId: "", seq: 0, key: "n", expect: null, value };
    expect(kv.apply(entry(102, encodeCommand(cas)))).toMatchObject({ status: "ok" });
    expect(kv.apply(entry(103, encodeCommand(cas)))).toMatchObject({ status: "mismatch" });
    expect(snapshotWithout).not.toBe(kv.hash());
  });
});
