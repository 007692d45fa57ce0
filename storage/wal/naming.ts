/** Segment file names and directory listing. No reading of file contents here. */
import { posix } from "node:path";
import type { FileSystem } from "../fs/file-system.js";

const SEGMENT_NAME = /^segment-(\d{20})\.wal$/;
const RECYCLED_NAME = /^recycled-(\d{20})\.wal$/;
const TORN_NAME = /^segment-(\d{20})\.wal\.torn-(\d+)(\.\d+)?$/;

/** `segment-<id, 20 decimal digits>.wal`: lexical order is id order. */
export function segmentFileName(segmentId: number): string {
  return `segment-${String(segmentId).padStart(20, "0")}.wal`;
}

/** The segment id a file name stands for, or undefined when it is not a segment name. */
export function parseSegmentFileName(name: string): number | undefined {
  const match = SEGMENT_NAME.exec(name);
  if (!match) return undefined;
  const id = Number(match[1]);
  return Number.isSafeInteger(id) && id >= 1 ? id : undefined;
}

/**
 * `recycled-<id of the segment it was>.wal`: a compacted segment kept for reuse instead of
 * deleted. Not a segment name, so recovery and the tools ignore it.
 */
export function recycledFileName(formerSegmentId: number): string {
  return `recycled-${String(formerSegmentId).padStart(20, "0")}.wal`;
}

/** The former segment id a recycled file's name stands for, or undefined when it is not one. */
export function parseRecycledFileName(name: string): number | undefined {
  const match = RECYCLED_NAME.exec(name);
  return match ? Number(match[1]) : undefined;
}

/** The recycled files of `dir` (names), oldest former segment first. */
export async function listRecycledFiles(dir: string, fs: FileSystem): Promise<string[]> {
  return (await fs.list(dir)).filter((name) => RECYCLED_NAME.test(name)).sort();
}

/** Where the bytes cut from a torn tail at `offset` are kept: beside the segment (then `.1`, `.2`, ... if taken). */
export function tornTailFileName(segmentName: string, offset: number): string {
  return `${segmentName}.torn-${offset}`;
}

export function isTornTailFileName(name: string): boolean {
  return TORN_NAME.test(name);
}

export interface SegmentFileRef {
  segmentId: number;
  name: string;
  path: string;
}

/** The segment files of `dir`, ascending by id. Other names are ignored. */
export async function listSegmentFiles(dir: string, fs: FileSystem): Promise<SegmentFileRef[]> {
  const refs: SegmentFileRef[] = [];
  for (const name of await fs.list(dir)) {
    const segmentId = parseSegmentFileName(name);
    if (segmentId !== undefined) refs.push({ segmentId, name, path: posix.join(dir, name) });
  }
  return refs.sort((a, b) => a.segmentId - b.segmentId);
}
