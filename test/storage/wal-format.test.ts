/** The on-disk format: pure encode/decode round trips and the checksum. */
import { describe, expect, it } from "vitest";
import { crc32Package, crc32Zlib, crc32NodeRs, crc32, loadNodeRsCrc32 } from "../../storage/wal/crc.js";
import {
  COMMIT_FLAG_PIPELINED,
  COMMIT_PAYLOAD_BYTES,
  FORMAT_VERSION,
  FORMAT_VERSION_UNSEEDED,
  RECORD_HEADER_BYTES,
  RECORD_PAYLOAD_BYTES_MAX,
  RecordType,
  SEGMENT_HEADER_BYTES,
  checkRecord,
  decodeCommitPayload,
  decodeRecordHeader,
  decodeSegmentHeader,
  emptyRecordHeader,
  encodeCommitRecord,
  encodeRecord,
  encodeSegmentHeader,
  recordBytes,
  recordCrcSeed,
} from "../../storage/wal/format.js";
import { parseSegmentFileName, segmentFileName } from "../../storage/wal/naming.js";
import { seededRandom } from "./wal-helpers.js";

describe("CRC-32", () => {
  it("is the IEEE polynomial (check value of '123456789' is 0xCBF43926)", () => {
    expect(crc32(new TextEncoder().encode("123456789"))).toBe(0xcbf43926);
    expect(crc32Package(new TextEncoder().encode("123456789"))).toBe(0xcbf43926);
  });

  it("Node's zlib.crc32 and the crc-32 package agree, also when chained over two buffers (seeded)", () => {
    const next = seededRandom(20240611);
    for (let trial = 0; trial < 200; trial++) {
      const data = new Uint8Array(Math.floor(next() * 5000));
      for (let i = 0; i < data.length; i++) data[i] = Math.floor(next() * 256);
      const split = Math.floor(next() * data.length);
      const whole = crc32Package(data);
      expect(crc32Package(data.subarray(split), crc32Package(data.subarray(0, split)))).toBe(whole);
      if (crc32Zlib) {
        expect(crc32Zlib(data)).toBe(whole);
        expect(crc32Zlib(data.subarray(split), crc32Zlib(data.subarray(0, split)))).toBe(whole);
      }
      expect(crc32(data)).toBe(whole);
      expect(crc32(data.subarray(split), crc32(data.subarray(0, split)))).toBe(whole);
    }
  });

  it("@node-rs/crc32 loads where it has a prebuilt binary (linux x64, as in CI) and agrees with crc-32, chained too (seeded)", () => {
    if (process.platform === "linux" && process.arch === "x64") expect(crc32NodeRs, "the prebuilt binary of @node-rs/crc32 loads").toBeDefined();
    if (!crc32NodeRs) return;
    const next = seededRandom(20261129);
    for (let trial = 0; trial < 200; trial++) {
      const data = new Uint8Array(Math.floor(next() * 70_000));
      for (let i = 0; i < data.length; i++) data[i] = Math.floor(next() * 256);
      const split = Math.floor(next() * data.length);
      const running = Math.floor(next() * 2 ** 32);
      expect(crc32NodeRs!(data, running)).toBe(crc32Package(data, running));
      expect(crc32NodeRs!(data.subarray(split), crc32NodeRs!(data.subarray(0, split)))).toBe(crc32Package(data));
    }
  });

  it("falls back (undefined) when @node-rs/crc32 does not load, has no crc32, or gives wrong values", () => {
    const missing = (): never => {
      throw new Error("Cannot find module '@node-rs/crc32'");
    };
    expect(loadNodeRsCrc32(missing)).toBeUndefined();
    expect(loadNodeRsCrc32(() => ({}))).toBeUndefined();
    expect(loadNodeRsCrc32(() => ({ crc32: (data: Uint8Array) => data.length }))).toBeUndefined();
    // A function that ignores the running value passes the whole check value but not the chained one.
    expect(loadNodeRsCrc32(() => ({ crc32: (data: Uint8Array) => crc32Package(data) }))).toBeUndefined();
    expect(loadNodeRsCrc32(() => ({ crc32: (data: Uint8Array, running: number) => crc32Package(data, running) }))).toBeDefined();
  });
});

/** A segment header with a fixed CRC, for hand-made headers of other versions and flags. */
function withCrc(bytes: Uint8Array): Uint8Array {
  new DataView(bytes.buffer, bytes.byteOffset).setUint32(32, crc32Package(bytes.subarray(0, 32)), true);
  return bytes;
}

describe("segment header", () => {
  it("round-trips every field with non-default values", () => {
    const header = { formatVersion: FORMAT_VERSION, recycled: true, segmentSizeBytes: 0xdead_bee8, segmentId: 2 ** 40 + 12345, firstIndex: 2 ** 52 + 7 };
    const bytes = encodeSegmentHeader(header);
    expect(bytes.length).toBe(SEGMENT_HEADER_BYTES);
    expect(bytes[10]).toBe(1); // the RECYCLED flag
    expect(decodeSegmentHeader(bytes)).toEqual({ kind: "ok", header });
    expect(decodeSegmentHeader(encodeSegmentHeader({ ...header, recycled: false }))).toEqual({ kind: "ok", header: { ...header, recycled: false } });
  });

  it("reads format version 1 (no flags) and refuses unknown versions and flags", () => {
    const v1 = encodeSegmentHeader({ formatVersion: FORMAT_VERSION_UNSEEDED, recycled: false, segmentSizeBytes: 65536, segmentId: 3, firstIndex: 9 });
    expect(decodeSegmentHeader(v1)).toMatchObject({ kind: "ok", header: { formatVersion: 1, recycled: false } });
    const v1Flagged = v1.slice();
    v1Flagged[10] = 1;
    expect(decodeSegmentHeader(withCrc(v1Flagged))).toMatchObject({ kind: "bad" });
    const unknownFlag = encodeSegmentHeader({ formatVersion: FORMAT_VERSION, recycled: false, segmentSizeBytes: 65536, segmentId: 3, firstIndex: 9 });
    unknownFlag[10] = 2;
    expect(decodeSegmentHeader(withCrc(unknownFlag))).toMatchObject({ kind: "bad" });
    const v3 = unknownFlag.slice();
    v3[10] = 0;
    v3[8] = 3;
    expect(decodeSegmentHeader(withCrc(v3))).toMatchObject({ kind: "bad", reason: expect.stringContaining("version 3") });
  });

  it("tells blank, damaged and foreign headers apart", () => {
    expect(decodeSegmentHeader(new Uint8Array(SEGMENT_HEADER_BYTES)).kind).toBe("blank");
    const bytes = encodeSegmentHeader({ formatVersion: FORMAT_VERSION, recycled: false, segmentSizeBytes: 65536, segmentId: 3, firstIndex: 9 });
    for (let i = 0; i < SEGMENT_HEADER_BYTES; i++) {
      const damaged = bytes.slice();
      damaged[i] ^= 0x10;
      expect(decodeSegmentHeader(damaged).kind, `byte ${i}`).toBe("bad");
    }
    const foreign = new TextEncoder().encode("this is not a raftwal segment at all....");
    expect(decodeSegmentHeader(foreign)).toMatchObject({ kind: "bad", reason: expect.stringContaining("magic") });
  });
});

const SEED = recordCrcSeed(7);

describe("records", () => {
  it("checksum the segment id first: a record of one segment fails in another; format 1 records do not cover it", () => {
    const record = new Uint8Array(recordBytes(5));
    encodeRecord(record, 0, RecordType.ENTRY, 11, 2, new Uint8Array([1, 2, 3, 4, 5]), SEED);
    const header = emptyRecordHeader();
    expect(decodeRecordHeader(record, 0, header)).toBe("ok");
    expect(checkRecord(record, 0, header, SEED)).toBeUndefined();
    expect(checkRecord(record, 0, header, recordCrcSeed(8))).toBe("checksum mismatch");
    // Computed independently: CRC-32 of the id's 8 little-endian bytes, then the record with its CRC field zeroed.
    const image = new Uint8Array(8 + RECORD_HEADER_BYTES + 5);
    image[0] = 7;
    image.set(record.subarray(0, RECORD_HEADER_BYTES + 5), 8);
    image.fill(0, 8 + 28, 8 + 32);
    expect(header.crc).toBe(crc32Package(image));
    expect(recordCrcSeed(7, FORMAT_VERSION_UNSEEDED)).toBe(0);
    expect(header.crc).not.toBe(crc32Package(image.subarray(8)));
  });

  it("round-trip each type with non-default header fields", () => {
    const payload = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    const cases: Array<[number, number, number, Uint8Array]> = [
      [RecordType.ENTRY, 2 ** 52 + 3, 2 ** 45 + 1, payload],
      [RecordType.TRUNCATE_SUFFIX, 77, 0, new Uint8Array(0)],
      [RecordType.COMPACT, 1234567, 89, new Uint8Array(0)],
    ];
    for (const [type, index, term, data] of cases) {
      const buffer = new Uint8Array(recordBytes(data.length) + 8).fill(0xee);
      const written = encodeRecord(buffer, 8 - 8, type as never, index, term, data, SEED);
      expect(written).toBe(recordBytes(data.length));
      expect(written % 8).toBe(0);
      const header = emptyRecordHeader();
      expect(decodeRecordHeader(buffer, 0, header)).toBe("ok");
      expect(header).toMatchObject({ type, index, term, payloadBytes: data.length });
      expect(checkRecord(buffer, 0, header, SEED)).toBeUndefined();
      expect(buffer.subarray(RECORD_HEADER_BYTES, RECORD_HEADER_BYTES + data.length)).toEqual(data);
      // Padding is zero-filled.
      expect(buffer.subarray(RECORD_HEADER_BYTES + data.length, written).every((b) => b === 0)).toBe(true);
    }
  });

  it("commit record carries its batch start and record count", () => {
    const buffer = new Uint8Array(recordBytes(COMMIT_PAYLOAD_BYTES));
    encodeCommitRecord(buffer, 0, 4242, { batchStartOffset: 123456, recordCount: 789 }, SEED);
    const header = emptyRecordHeader();
    expect(decodeRecordHeader(buffer, 0, header)).toBe("ok");
    expect(header).toMatchObject({ type: RecordType.COMMIT, index: 4242, term: 0, payloadBytes: COMMIT_PAYLOAD_BYTES });
    expect(checkRecord(buffer, 0, header, SEED)).toBeUndefined();
    expect(decodeCommitPayload(buffer, 0)).toEqual({ batchStartOffset: 123456, recordCount: 789 });
  });

  it("a COMMIT record may carry the PIPELINED flag (covered by its checksum); no other record carries a flag", () => {
    const commit = new Uint8Array(recordBytes(COMMIT_PAYLOAD_BYTES));
    encodeCommitRecord(commit, 0, 7, { batchStartOffset: 40, recordCount: 1 }, SEED, true);
    const header = emptyRecordHeader();
    expect(decodeRecordHeader(commit, 0, header)).toBe("ok");
    expect(header.flags).toBe(COMMIT_FLAG_PIPELINED);
    expect(checkRecord(commit, 0, header, SEED)).toBeUndefined();
    commit[1] = 0; // the flag is part of what the CRC covers
    expect(decodeRecordHeader(commit, 0, header)).toBe("ok");
    expect(checkRecord(commit, 0, header, SEED)).toBe("checksum mismatch");
    const entryRecord = new Uint8Array(recordBytes(3));
    encodeRecord(entryRecord, 0, RecordType.ENTRY, 5, 1, new Uint8Array(3), SEED);
    entryRecord[1] = COMMIT_FLAG_PIPELINED;
    expect(decodeRecordHeader(entryRecord, 0, header)).toBe("bad");
  });

  it("zero space is not a record; type 0 with other bytes set is damage; every flipped bit fails the check", () => {
    const header = emptyRecordHeader();
    expect(decodeRecordHeader(new Uint8Array(RECORD_HEADER_BYTES), 0, header)).toBe("zero");
    const stray = new Uint8Array(RECORD_HEADER_BYTES);
    stray[9] = 1;
    expect(decodeRecordHeader(stray, 0, header)).toBe("bad");
    const record = new Uint8Array(recordBytes(13));
    encodeRecord(record, 0, RecordType.ENTRY, 5, 2, new Uint8Array(13).fill(7), SEED);
    for (let i = 0; i < record.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const damaged = record.slice();
        damaged[i] ^= 1 << bit;
        const status = decodeRecordHeader(damaged, 0, header);
        expect(status === "bad" || checkRecord(damaged, 0, header, SEED) !== undefined, `byte ${i} bit ${bit}`).toBe(true);
      }
    }
  });

  it("rejects a length beyond the limit without reading it", () => {
    const record = new Uint8Array(RECORD_HEADER_BYTES);
    encodeRecord(record, 0, RecordType.TRUNCATE_SUFFIX, 5, 0, new Uint8Array(0), SEED);
    new DataView(record.buffer).setUint32(4, RECORD_PAYLOAD_BYTES_MAX + 1, true);
    expect(decodeRecordHeader(record, 0, emptyRecordHeader())).toBe("bad");
  });
});

describe("segment file names", () => {
  it("round-trip and sort by id", () => {
    expect(segmentFileName(42)).toBe("segment-00000000000000000042.wal");
    expect(parseSegmentFileName(segmentFileName(2 ** 50))).toBe(2 ** 50);
    expect(parseSegmentFileName("segment-1.wal")).toBeUndefined();
    expect(parseSegmentFileName(`${segmentFileName(3)}.torn-96`)).toBeUndefined();
    expect([segmentFileName(10), segmentFileName(9)].sort()).toEqual([segmentFileName(9), segmentFileName(10)]);
  });
});
