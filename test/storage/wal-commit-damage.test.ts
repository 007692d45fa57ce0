/**
 * Telling a COMMIT damaged after it was written whole (corruption: its batch may have been
 * acknowledged) from one a crash cut (a torn tail): storage/wal/commit-damage.ts.
 */
import { describe, expect, it } from "vitest";
import { commitDamagedAfterWrite, expectedCommitRecords, FLIPPED_BITS_MAX } from "../../storage/wal/commit-damage.js";
import { COMMIT_RECORD_BYTES, recordCrcSeed } from "../../storage/wal/format.js";

const EXPECTED = { batchStartOffset: 4136, recordCount: 3, lastIndex: 1207, seed: recordCrcSeed(7) };
/** A record no 512-byte boundary crosses. */
const AT = 4160;
const [PLAIN, PIPELINED] = expectedCommitRecords(EXPECTED);

function flipped(record: Uint8Array, ...bits: number[]): Uint8Array {
  const copy = record.slice();
  for (const bit of bits) copy[bit >> 3] ^= 1 << (bit & 7);
  return copy;
}

/** What a crash leaves: the record's first `cut` bytes, then what was there before. */
function cutInto(record: Uint8Array, cut: number, before: Uint8Array): Uint8Array {
  const copy = before.slice(0, COMMIT_RECORD_BYTES);
  copy.set(record.subarray(0, cut));
  return copy;
}

/** A cut with zeros after it: the record's bytes from the first differing one on are zero. */
function looksCut(onDisk: Uint8Array, expected: Uint8Array): boolean {
  const first = onDisk.findIndex((b, i) => b !== expected[i]);
  return first >= 0 && onDisk.subarray(first).every((b) => b === 0);
}

const BITS = COMMIT_RECORD_BYTES * 8;

describe("a COMMIT damaged after it was written whole", () => {
  it("every flip of one or two bits is damage, unless it makes the record look cut into zeros", () => {
    let cutLooking = 0;
    for (const recycled of [false, true]) {
      for (let a = 0; a < BITS; a++) {
        for (let b = a; b < BITS; b++) {
          const onDisk = a === b ? flipped(PLAIN, a) : flipped(PLAIN, a, b);
          const damaged = commitDamagedAfterWrite(onDisk, [PLAIN, PIPELINED], { recycled, fileOffset: AT });
          // In a recycled segment stale bytes can come close to the checksum and payload: only flips before them count.
          const explainedByStale = recycled && Math.min(a, b) >= 28 * 8;
          if (looksCut(onDisk, PLAIN) || explainedByStale) {
            expect(damaged, `bits ${a},${b} recycled ${recycled}`).toBe(false);
            cutLooking += looksCut(onDisk, PLAIN) ? 1 : 0;
          } else {
            expect(damaged, `bits ${a},${b} recycled ${recycled}`).toBe(true);
          }
        }
      }
    }
    expect(cutLooking).toBeGreaterThan(0);
    expect(FLIPPED_BITS_MAX).toBe(2);
  });

  it("the PIPELINED encoding is recognized too, and more flipped bits are not called damage", () => {
    expect(commitDamagedAfterWrite(flipped(PIPELINED, 100), [PLAIN, PIPELINED], { recycled: false, fileOffset: AT })).toBe(true);
    expect(commitDamagedAfterWrite(flipped(PLAIN, 3, 100, 200), [PLAIN, PIPELINED], { recycled: false, fileOffset: AT })).toBe(false);
    expect(commitDamagedAfterWrite(PLAIN, [PLAIN, PIPELINED], { recycled: false, fileOffset: AT })).toBe(false);
    expect(commitDamagedAfterWrite(flipped(PLAIN, 3).subarray(0, 39), [PLAIN, PIPELINED], { recycled: false, fileOffset: AT })).toBe(false);
  });
});

describe("a COMMIT cut by a crash is never called damage", () => {
  it("a sector boundary crossing the record: differences only before it are a lost sector, not damage", () => {
    for (let boundary = 8; boundary < COMMIT_RECORD_BYTES; boundary += 8) {
      const fileOffset = 512 * 9 - boundary;
      for (let bit = 0; bit < BITS; bit++) {
        const onDisk = flipped(PLAIN, bit);
        const damaged = commitDamagedAfterWrite(onDisk, [PLAIN, PIPELINED], { recycled: false, fileOffset });
        expect(damaged, `boundary ${boundary}, bit ${bit}`).toBe((bit >> 3) >= boundary && !looksCut(onDisk, PLAIN));
      }
    }
    // The earlier sector lost to zeros: the type and length bytes zero, the rest written.
    const lostHead = PLAIN.slice();
    lostHead.fill(0, 0, 8);
    expect(commitDamagedAfterWrite(lostHead, [PLAIN, PIPELINED], { recycled: false, fileOffset: 512 * 9 - 8 })).toBe(false);
    expect(commitDamagedAfterWrite(lostHead, [PLAIN, PIPELINED], { recycled: false, fileOffset: AT })).toBe(true);
  });

  it("cut at every byte into unwritten space (zeros)", () => {
    for (const recycled of [false, true]) {
      for (let cut = 0; cut < COMMIT_RECORD_BYTES; cut++) {
        const onDisk = cutInto(PLAIN, cut, new Uint8Array(COMMIT_RECORD_BYTES));
        expect(commitDamagedAfterWrite(onDisk, [PLAIN, PIPELINED], { recycled, fileOffset: AT }), `cut ${cut}`).toBe(false);
      }
    }
  });

  it("cut at every byte into a recycled segment's stale COMMIT at the same offset, with the same payload", () => {
    for (const staleIndex of [1199, 1206, 1207 - 1024, 1207]) {
      for (const staleSeed of [recordCrcSeed(3), recordCrcSeed(6)]) {
        const [stale] = expectedCommitRecords({ ...EXPECTED, lastIndex: staleIndex, seed: staleSeed });
        for (let cut = 0; cut < COMMIT_RECORD_BYTES; cut++) {
          const onDisk = cutInto(PLAIN, cut, stale);
          expect(commitDamagedAfterWrite(onDisk, [PLAIN, PIPELINED], { recycled: true, fileOffset: AT }), `cut ${cut}, stale index ${staleIndex}`).toBe(false);
        }
      }
    }
  });
});
