/**
 * Reading snapshot files: header and metadata, full verification, and a streamed
 * payload reader. Everything goes through the FileSystem seam.
 */
import type { SnapshotMeta } from "../../src/proto/schema.js";
import { WalErrorCode } from "../errors.js";
import { crc32 } from "../wal/crc.js";
import type { FileSystem, StorageFile } from "../fs/file-system.js";
import {
  SNAPSHOT_HEADER_BYTES,
  decodeSnapshotHeader,
  decodeSnapshotMeta,
  parseSnapshotFileName,
  snapshotCorrupt,
  type SnapshotHeader,
} from "./format.js";
import { basename } from "node:path";

/** Payload bytes read per call when verifying or streaming: large enough for sequential throughput, small enough to bound memory. */
export const SNAPSHOT_READ_CHUNK_BYTES = 1024 * 1024;

export interface SnapshotFileInfo {
  meta: SnapshotMeta;
  header: SnapshotHeader;
  fileBytes: number;
}

async function readExactly(file: StorageFile, length: number, position: number, path: string): Promise<Uint8Array> {
  const buffer = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const count = await file.read(buffer, done, length - done, position + done);
    if (count === 0) throw snapshotCorrupt(path, `ends at byte ${position + done}, expected ${length - done} more bytes`);
    done += count;
  }
  return buffer;
}

/** Reads and checks the header and metadata of an open snapshot file (not the payload). */
export async function readSnapshotHeaderAndMeta(file: StorageFile, path: string): Promise<SnapshotFileInfo> {
  const fileBytes = await file.size();
  const headerBytes = await readExactly(file, Math.min(SNAPSHOT_HEADER_BYTES, fileBytes), 0, path);
  const header = decodeSnapshotHeader(headerBytes, fileBytes, path);
  const metaBytes = await readExactly(file, header.metaBytes, SNAPSHOT_HEADER_BYTES + header.payloadBytes, path);
  const meta = decodeSnapshotMeta(metaBytes, header, parseSnapshotFileName(basename(path)), path);
  return { meta, header, fileBytes };
}

/** Yields the payload of an open, header-checked snapshot in chunks; throws WAL_ERR_SNAPSHOT_CORRUPT at the end if its checksum fails. */
export async function* streamPayload(
  file: StorageFile,
  info: SnapshotFileInfo,
  path: string,
  chunkBytes = SNAPSHOT_READ_CHUNK_BYTES,
): AsyncGenerator<Uint8Array> {
  let checksum = 0;
  for (let offset = 0; offset < info.header.payloadBytes; ) {
    const length = Math.min(chunkBytes, info.header.payloadBytes - offset);
    const chunk = await readExactly(file, length, SNAPSHOT_HEADER_BYTES + offset, path);
    checksum = crc32(chunk, checksum);
    offset += length;
    yield chunk;
  }
  if (checksum !== info.header.payloadChecksum) throw snapshotCorrupt(path, "payload checksum mismatch");
}

/**
 * Opens `path` and checks header, metadata and (with `verifyPayload`) the payload's
 * checksum. Throws WAL_ERR_SNAPSHOT_CORRUPT if anything is damaged.
 */
export async function inspectSnapshotFile(fs: FileSystem, path: string, options: { verifyPayload: boolean }): Promise<SnapshotFileInfo> {
  let file: StorageFile;
  try {
    file = await fs.open(path, { readOnly: true });
  } catch (error) {
    throw snapshotCorrupt(path, `unreadable (${(error as Error).message})`, error);
  }
  try {
    const info = await readSnapshotHeaderAndMeta(file, path);
    if (options.verifyPayload) {
      for await (const _chunk of streamPayload(file, info, path)) {
        // Reading is the verification.
      }
    }
    return info;
  } catch (error) {
    if ((error as { code?: string }).code === WalErrorCode.SNAPSHOT_CORRUPT) throw error;
    throw snapshotCorrupt(path, `unreadable (${(error as Error).message})`, error);
  } finally {
    await file.close();
  }
}
