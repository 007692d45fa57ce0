import { describe, expect, it } from "vitest";
import { entryCodec, messageCodec, hardStateCodec, frameCodec, emptyMessage, MessageType } from "../src/proto/schema.js";
import { clusterConfigOf } from "../src/raft/cluster-config.js";

describe("protobuf schema", () => {
  it("round-trips an entry with every field set, including a 64-bit index above 2^32", () => {
    const entry = { term: 7, index: 2 ** 40 + 3, type: 0 as const, data: new Uint8Array([1, 2, 3]) };
    const decoded = entryCodec.decode(entryCodec.encode(entry));
    expect(decoded.term).toBe(7);
    expect(decoded.index).toBe(2 ** 40 + 3);
    expect(typeof decoded.index).toBe("number");
    expect(Array.from(decoded.data)).toEqual([1, 2, 3]);
  });

  it("round-trips a message with entries and a snapshot chunk", () => {
    const m = {
      ...emptyMessage(),
      type: MessageType.SNAPSHOT,
      to: 2,
      from: 1,
      term: 5,
      logTerm: 4,
      index: 99,
      commit: 98,
      reject: true,
      rejectHint: 50,
      rejectTerm: 3,
      entries: [{ term: 4, index: 100, type: 0 as const, data: new Uint8Array([9]) }],
      snapshot: { meta: { index: 90, term: 4, config: clusterConfigOf([1, 2, 3]), sizeBytes: 1000 }, offset: 512, data: new Uint8Array([7, 7]), done: true },
    };
    const d = messageCodec.decode(messageCodec.encode(m));
    expect(d).toMatchObject({ type: MessageType.SNAPSHOT, to: 2, from: 1, term: 5, logTerm: 4, index: 99, commit: 98, reject: true, rejectHint: 50, rejectTerm: 3 });
    expect(d.entries).toHaveLength(1);
    expect(d.entries[0].index).toBe(100);
    expect(d.snapshot?.meta).toEqual({ index: 90, term: 4, config: clusterConfigOf([1, 2, 3]), sizeBytes: 1000 });
    expect(d.snapshot?.offset).toBe(512);
    expect(d.snapshot?.done).toBe(true);
  });

  it("decodes absent fields as defaults, never undefined", () => {
    const d = messageCodec.decode(messageCodec.encode(emptyMessage()));
    expect(d).toEqual(emptyMessage());
    expect(hardStateCodec.decode(hardStateCodec.encode({ term: 0, vote: 0, commit: 0 }))).toEqual({ term: 0, vote: 0, commit: 0 });
  });

  it("frames carry either a handshake or a message", () => {
    const h = frameCodec.decode(frameCodec.encode({ handshake: { protocolVersion: 1, clusterId: "c1", nodeId: 3, peerAddress: "", refusal: "", removed: false } }));
    expect(h.handshake).toEqual({ protocolVersion: 1, clusterId: "c1", nodeId: 3, peerAddress: "", refusal: "", removed: false });
    const m = frameCodec.decode(frameCodec.encode({ message: { ...emptyMessage(), type: MessageType.HEARTBEAT, to: 2, from: 1 } }));
    expect(m.message?.type).toBe(MessageType.HEARTBEAT);
  });

  it("rejects undecodable bytes with an error", () => {
    expect(() => messageCodec.decode(new Uint8Array([0x0a, 0xff, 0xff, 0xff]))).toThrow();
  });
});
