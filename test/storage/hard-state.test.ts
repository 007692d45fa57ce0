import { describe, expect, it } from "vitest";
import { MemoryFileSystem } from "../../storage/fs/memory-file-system.js";
import {
  HardStateFile,
  HARD_STATE_FILE_NAME,
  HARD_STATE_MAGIC,
  HARD_STATE_TEMPORARY_FILE_NAME,
  decodeHardStateFile,
  encodeHardStateFile,
  readHardState,
} from "../../storage/hard-state.js";
import { CrashingFileSystem, SimulatedCrash } from "./raft-storage-crashing-fs.js";

const DIR = "/node/hardstate";
const PATH = `${DIR}/${HARD_STATE_FILE_NAME}`;

describe("hard-state file format", () => {
  it("round-trips every field with non-default values, including values above 2^32", () => {
    const state = { term: 2 ** 40 + 7, vote: 3, commit: 2 ** 33 + 1 };
    const image = encodeHardStateFile(state);
    expect(new DataView(image.buffer).getUint32(0, true)).toBe(HARD_STATE_MAGIC);
    expect(decodeHardStateFile(image, "x")).toEqual(state);
    expect(decodeHardStateFile(encodeHardStateFile({ term: 0, vote: 0, commit: 0 }), "x")).toEqual({ term: 0, vote: 0, commit: 0 });
  });

  it("rejects negative or fractional values before writing anything", () => {
    expect(() => encodeHardStateFile({ term: -1, vote: 0, commit: 0 })).toThrow(expect.objectContaining({ code: "RAFTWAL_ERR_INVALID_ARGUMENT" }));
    expect(() => encodeHardStateFile({ term: 1.5, vote: 0, commit: 0 })).toThrow(expect.objectContaining({ code: "RAFTWAL_ERR_INVALID_ARGUMENT" }));
  });

  it("detects a flip of every bit of the file as WAL_ERR_HARD_STATE_CORRUPT", () => {
    const image = encodeHardStateFile({ term: 12, vote: 2, commit: 345 });
    for (let position = 0; position < image.length; position++) {
      for (let bit = 0; bit < 8; bit++) {
        const damaged = image.slice();
        damaged[position] ^= 1 << bit;
        expect(() => decodeHardStateFile(damaged, PATH), `byte ${position} bit ${bit}`).toThrow(
          expect.objectContaining({ code: "WAL_ERR_HARD_STATE_CORRUPT" }),
        );
      }
    }
  });

  it("rejects a truncated or extended file", () => {
    const image = encodeHardStateFile({ term: 12, vote: 2, commit: 345 });
    for (let length = 0; length < image.length; length++) {
      expect(() => decodeHardStateFile(image.subarray(0, length), PATH)).toThrow(expect.objectContaining({ code: "WAL_ERR_HARD_STATE_CORRUPT" }));
    }
    const longer = new Uint8Array(image.length + 1);
    longer.set(image);
    expect(() => decodeHardStateFile(longer, PATH)).toThrow(expect.objectContaining({ code: "WAL_ERR_HARD_STATE_CORRUPT" }));
  });
});

describe("HardStateFile", () => {
  it("is all zeros on a brand-new directory and round-trips saves across reopen", async () => {
    const fs = new MemoryFileSystem();
    const file = await HardStateFile.open(fs, DIR);
    expect(file.get()).toEqual({ term: 0, vote: 0, commit: 0 });
    expect(file.existedAtOpen).toBe(false);
    await file.save({ term: 5, vote: 2, commit: 10 });
    await file.save({ term: 6, vote: 0, commit: 11 });
    fs.crash();
    const reopened = await HardStateFile.open(fs, DIR);
    expect(reopened.existedAtOpen).toBe(true);
    expect(reopened.get()).toEqual({ term: 6, vote: 0, commit: 11 });
  });

  it("a bit flip anywhere in the durable file fails open with WAL_ERR_HARD_STATE_CORRUPT, never term 0", async () => {
    const fs = new MemoryFileSystem();
    const file = await HardStateFile.open(fs, DIR);
    await file.save({ term: 9, vote: 1, commit: 4 });
    const size = fs.durableBytes(PATH).length;
    for (let position = 0; position < size; position++) {
      fs.flipBit(PATH, position, position % 8);
      await expect(HardStateFile.open(fs, DIR), `byte ${position}`).rejects.toMatchObject({ code: "WAL_ERR_HARD_STATE_CORRUPT" });
      fs.flipBit(PATH, position, position % 8);
    }
    expect((await HardStateFile.open(fs, DIR)).get()).toEqual({ term: 9, vote: 1, commit: 4 });
  });

  it("an empty or truncated hard-state file is corrupt, not zeros", async () => {
    const fs = new MemoryFileSystem();
    await (await HardStateFile.open(fs, DIR)).save({ term: 3, vote: 3, commit: 3 });
    fs.truncateFile(PATH, 0);
    await expect(readHardState(fs, DIR)).rejects.toMatchObject({ code: "WAL_ERR_HARD_STATE_CORRUPT" });
  });

  it("survives a crash after every single operation of a save: old or new state, never garbage", async () => {
    const before = { term: 4, vote: 1, commit: 7 };
    const after = { term: 5, vote: 3, commit: 8 };
    // Tear the unsynced bytes at several cut points too.
    for (const keep of [0, 1, 7, 1000]) {
      let crashed = true;
      for (let crashAfter = 1; crashed; crashAfter++) {
        const memory = new MemoryFileSystem();
        await (await HardStateFile.open(memory, DIR)).save(before);
        const fs = new CrashingFileSystem(memory, crashAfter, { keepUnsyncedBytes: (_path, unsynced) => Math.min(keep, unsynced) });
        const file = await HardStateFile.open(fs, DIR).catch((error) => error);
        crashed = false;
        let acknowledged = false;
        if (file instanceof HardStateFile) {
          try {
            await file.save(after);
            acknowledged = true;
          } catch (error) {
            expect((error as Error).cause).toBeInstanceOf(SimulatedCrash);
            crashed = true;
          }
        } else {
          expect(file).toBeInstanceOf(SimulatedCrash);
          crashed = true;
        }
        if (!crashed) memory.crash();
        const seen = (await HardStateFile.open(memory, DIR)).get();
        if (acknowledged) expect(seen).toEqual(after);
        else expect([before, after]).toContainEqual(seen);
        expect(await memory.exists(`${DIR}/${HARD_STATE_TEMPORARY_FILE_NAME}`)).toBe(false);
      }
    }
  });

  it("the first save on a new directory, crashed at every step: zeros or the new state", async () => {
    let crashed = true;
    for (let crashAfter = 1; crashed; crashAfter++) {
      const memory = new MemoryFileSystem();
      const fs = new CrashingFileSystem(memory, crashAfter);
      crashed = false;
      try {
        await (await HardStateFile.open(fs, DIR)).save({ term: 1, vote: 1, commit: 0 });
        memory.crash();
      } catch (error) {
        // The crash surfaces either directly or wrapped as the cause of WAL_ERR_FAILED.
        expect(error instanceof SimulatedCrash || (error as Error).cause instanceof SimulatedCrash).toBe(true);
        crashed = true;
      }
      const seen = (await HardStateFile.open(memory, DIR)).get();
      expect([{ term: 0, vote: 0, commit: 0 }, { term: 1, vote: 1, commit: 0 }]).toContainEqual(seen);
      if (!crashed) expect(seen).toEqual({ term: 1, vote: 1, commit: 0 });
    }
  });

  it("a failed fsync is reported, and the instance refuses every later save", async () => {
    const fs = new MemoryFileSystem();
    const file = await HardStateFile.open(fs, DIR);
    await file.save({ term: 1, vote: 1, commit: 0 });
    fs.failNextSync(HARD_STATE_TEMPORARY_FILE_NAME);
    await expect(file.save({ term: 2, vote: 2, commit: 0 })).rejects.toMatchObject({ code: "WAL_ERR_FAILED" });
    expect(file.failed()?.code).toBe("WAL_ERR_FAILED");
    await expect(file.save({ term: 3, vote: 3, commit: 0 })).rejects.toMatchObject({ code: "WAL_ERR_FAILED" });
    expect(file.get()).toEqual({ term: 1, vote: 1, commit: 0 });
    fs.crash();
    expect((await HardStateFile.open(fs, DIR)).get()).toEqual({ term: 1, vote: 1, commit: 0 });
  });

  it("a failed write is reported too", async () => {
    const fs = new MemoryFileSystem();
    const file = await HardStateFile.open(fs, DIR);
    fs.failNextWrite({ pathSuffix: HARD_STATE_TEMPORARY_FILE_NAME, bytesWritten: 3 });
    await expect(file.save({ term: 2, vote: 2, commit: 0 })).rejects.toMatchObject({ code: "WAL_ERR_FAILED" });
    expect((await HardStateFile.open(fs, DIR)).get()).toEqual({ term: 0, vote: 0, commit: 0 });
  });
});
