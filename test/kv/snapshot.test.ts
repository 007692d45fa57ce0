import { describe, expect, it } from "vitest";
import { KvErrorCode } from "../../src/errors.js";
import { SNAPSHOT_CHUNK_BYTES_MAX } from "../../src/kv/snapshot.js";
import { KvStateMachine } from "../../src/kv/state-machine.js";
import { cas, collect, concat, entry, put, recut, str } from "./helpers.js";

/** About 5 MiB: 20,000 keys with 256-byte values, a few large values, 2,000 sessions with results. */
function largeState(): KvStateMachine {
  const sm = new KvStateMachine();
  let index = 0;
  const value = "v".repeat(250);
  for (let i = 0; i < 20_000; i++) sm.apply(entry(++index, put(`client-${i % 2000}`, Math.floor(i / 2000) + 1, `key-${i}`, `${value}${i}`)));
  sm.apply(entry(++index, put("big", 1, "big-1", "b".repeat(900_000))));
  sm.apply(entry(++index, put("big", 2, "big-2", "c".repeat(1_000_000))));
  sm.apply(entry(++index, cas("m", 1, "key-1", "nope", "x"))); // a remembered mismatch with a value
  return sm;
}

const corruptCode = expect.objectContaining({ code: KvErrorCode.SNAPSHOT_CORRUPT });

describe("KvStateMachine snapshot and restore", () => {
  it("round-trips a large state in several chunks of at most 1 MiB, whatever the re-chunking", async () => {
    const source = largeState();
    const chunks = await collect(source.snapshot());
    expect(chunks.length).toBeGreaterThan(3);
    for (const chunk of chunks) expect(chunk.length).toBeLessThanOrEqual(SNAPSHOT_CHUNK_BYTES_MAX);

    const restored = new KvStateMachine();
    await restored.restore(chunks);
    expect(restored.hash()).toBe(source.hash());
    expect(restored.appliedIndex()).toBe(source.appliedIndex());
    expect(restored.size()).toBe(20_002);
    expect(restored.sessionCount()).toBe(source.sessionCount());
    expect(str(restored.get("key-19999"))).toBe(`${"v".repeat(250)}19999`);

    // The transport may cut the stream anywhere: odd sizes, single bytes, one piece.
    const bytes = concat(chunks);
    const odd = new KvStateMachine();
    await odd.restore(recut(bytes, [1, 7, 65_537, 3, 1_000_003]));
    expect(odd.hash()).toBe(source.hash());
    const whole = new KvStateMachine();
    await whole.restore([bytes]);
    expect(whole.hash()).toBe(source.hash());
  });

  it("restores a small state streamed one byte at a time, and the restored replica keeps de-duplicating", async () => {
    const sm = new KvStateMachine();
    sm.apply(entry(1, cas("c", 3, "k", null, "a")));
    sm.apply(entry(2, put("d", 1, "j", "b")));
    const bytes = concat(await collect(sm.snapshot()));
    const restored = new KvStateMachine();
    await restored.restore(recut(bytes, [1]));
    expect(restored.hash()).toBe(sm.hash());
    // The retry of c/3 is answered from the restored session, not applied again.
    expect(restored.apply(entry(3, cas("c", 3, "k", null, "a")))).toEqual({ status: "ok" });
    expect(restored.apply(entry(4, put("c", 2, "k", "old")))).toEqual({ status: "stale", lastSeq: 3 });
  });

  it("captures the state when snapshot() is called, even if entries are applied while it streams", async () => {
    const sm = new KvStateMachine({ snapshotChunkBytes: 64 });
    for (let i = 1; i <= 50; i++) sm.apply(entry(i, put("c", i, `k${i}`, `v${i}`)));
    const expectedHash = sm.hash();
    const stream = sm.snapshot();
    sm.apply(entry(51, put("c", 51, "k1", "changed")));
    const chunks = [];
    for await (const chunk of stream) {
      chunks.push(chunk);
      sm.apply(entry(sm.appliedIndex() + 1, put("c", sm.appliedIndex() + 1, "k2", "changed")));
    }
    expect(chunks.length).toBeGreaterThan(5);
    const restored = new KvStateMachine();
    await restored.restore(chunks);
    expect(restored.hash()).toBe(expectedHash);
  });

  it("replaces the previous state entirely", async () => {
    const source = new KvStateMachine();
    source.apply(entry(10, put("a", 1, "only", "1")));
    const target = new KvStateMachine();
    target.apply(entry(1, put("b", 1, "other", "2")));
    target.apply(entry(20, put("b", 2, "other", "3")));
    await target.restore(source.snapshot());
    expect(target.get("other")).toBeUndefined();
    expect(target.session("b")).toBeUndefined();
    expect(target.appliedIndex()).toBe(10);
    expect(target.hash()).toBe(source.hash());
  });

  describe("rejects a damaged stream with WAL_ERR_SNAPSHOT_CORRUPT and leaves the state untouched", () => {
    async function snapshotBytes(): Promise<Uint8Array> {
      const sm = new KvStateMachine();
      for (let i = 1; i <= 200; i++) sm.apply(entry(i, put(`c${i % 10}`, i, `key-${i}`, `value-${i}`)));
      return concat(await collect(sm.snapshot()));
    }

    async function expectRejected(bytes: Uint8Array, message: RegExp): Promise<void> {
      const target = new KvStateMachine();
      target.apply(entry(1, put("t", 1, "mine", "kept")));
      const before = target.hash();
      await expect(target.restore(recut(bytes, [100]))).rejects.toThrow(corruptCode);
      await expect(target.restore(recut(bytes, [100]))).rejects.toThrow(message);
      expect(target.hash()).toBe(before);
      expect(str(target.get("mine"))).toBe("kept");
    }

    it("truncated at any of several points", async () => {
      const bytes = await snapshotBytes();
      for (const length of [0, 5, 16, 17, 1000, bytes.length - 33, bytes.length - 1]) {
        await expectRejected(bytes.subarray(0, length), /truncated/);
      }
    });

    it("a flipped bit in a value (caught by the checksum)", async () => {
      const bytes = (await snapshotBytes()).slice();
      const at = bytes.indexOf(0x2d, 2000); // a '-' inside some "value-N"
      bytes[at] ^= 0x01;
      await expectRejected(bytes, /checksum/);
    });

    it("a flipped bit anywhere is rejected (sampled positions)", async () => {
      const original = await snapshotBytes();
      for (let position = 0; position < original.length; position += 97) {
        const bytes = original.slice();
        bytes[position] ^= 0x10;
        const target = new KvStateMachine();
        await expect(target.restore([bytes]), `bit flip at ${position}`).rejects.toThrow(corruptCode);
      }
    });

    it("bad magic, bad version, trailing bytes, extra chunk after the end", async () => {
      const bytes = await snapshotBytes();
      const magic = bytes.slice();
      magic[0] = 0;
      await expectRejected(magic, /bad magic/);
      const version = bytes.slice();
      version[4] = 9;
      await expectRejected(version, /unsupported version 9/);
      await expectRejected(concat([bytes, new Uint8Array([0])]), /after the end record/);
      const target = new KvStateMachine();
      await expect(target.restore([bytes, new Uint8Array([1, 2])])).rejects.toThrow(/after the end record/);
    });

    it("an absurd length is rejected before any buffering", async () => {
      const bytes = await snapshotBytes();
      const evil = concat([bytes.subarray(0, 16), new Uint8Array([0x01, 0xff, 0xff, 0xff, 0x7f])]);
      await expectRejected(evil, /key length/);
    });
  });
});
