/**
 * A NodeFileSystem whose files can hold one call of a kind (size or sync) until the test
 * releases it: it orders PowerLossFileSystem's awaits against another caller's, to replay a
 * race deterministically. Test rig only.
 */
import type { DurableWriteHint, OpenOptions, StorageFile } from "../../storage/fs/file-system.js";
import { NodeFileSystem } from "../../storage/fs/node-file-system.js";

export type HeldCall = "size" | "sync";

export interface Hold {
  /** Resolves once the held call has started (and waits). */
  reached: Promise<void>;
  release: () => void;
}

export class HoldingFileSystem extends NodeFileSystem {
  private readonly holds = new Map<HeldCall, { reached: () => void; released: Promise<void> }>();

  /** Holds the next `call` made through any file of this file system. */
  hold(call: HeldCall): Hold {
    let reached!: () => void;
    let release!: () => void;
    const reachedPromise = new Promise<void>((resolve) => (reached = resolve));
    const released = new Promise<void>((resolve) => (release = resolve));
    this.holds.set(call, { reached, released });
    return { reached: reachedPromise, release };
  }

  /** @internal Waits at a hold of `call`, if one is set. */
  async passHold(call: HeldCall): Promise<void> {
    const hold = this.holds.get(call);
    if (hold === undefined) return;
    this.holds.delete(call);
    hold.reached();
    await hold.released;
  }

  override async open(path: string, options: OpenOptions = {}): Promise<StorageFile> {
    return new HoldingFile(this, await super.open(path, options));
  }
}

class HoldingFile implements StorageFile {
  readonly path: string;

  constructor(
    private readonly owner: HoldingFileSystem,
    private readonly inner: StorageFile,
  ) {
    this.path = inner.path;
  }

  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    return this.inner.read(buffer, offset, length, position);
  }

  readSync(buffer: Uint8Array, offset: number, length: number, position: number): number {
    return this.inner.readSync(buffer, offset, length, position);
  }

  write(data: Uint8Array, position: number): Promise<void> {
    return this.inner.write(data, position);
  }

  async sync(): Promise<void> {
    await this.owner.passHold("sync");
    return this.inner.sync();
  }

  writeDurable(data: Uint8Array, position: number, hint: DurableWriteHint): Promise<void> {
    return this.inner.writeDurable(data, position, hint);
  }

  truncate(length: number): Promise<void> {
    return this.inner.truncate(length);
  }

  async size(): Promise<number> {
    await this.owner.passHold("size");
    return this.inner.size();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
