/**
 * Pure encoding and decoding of frames (no I/O). Every byte on a peer connection
 * belongs to a frame:
 *
 *    0               4                                   4 + length
 *   +---------------+-----------------------------------+
 *   | length        | body: protobuf `raftwal.Frame`    |
 *   | uint32 BE     | (a Handshake or a Message)        |
 *   +---------------+-----------------------------------+
 *
 * - `length` counts the body only, never the prefix. It is at least 1 (an empty body
 *   is malformed: a Frame always carries a handshake or a message) and at most the
 *   configured maximum (FRAME_BODY_BYTES_MAX_DEFAULT unless configured).
 * - The maximum is checked as soon as the 4 prefix bytes are in, before a single body
 *   byte is buffered: a peer cannot make us allocate more than the maximum.
 * - A body protobuf cannot decode, or a message of an unknown type, is malformed.
 */
import protobuf from "protobufjs";
import { frameCodec, MessageType, type Frame, frameType } from "../proto/schema.js";
import { TransportError, TransportErrorCode } from "./errors.js";

/** Size of the length prefix: a uint32, big-endian. */
export const FRAME_HEADER_BYTES = 4;

/**
 * Default largest frame body: 16 MiB. An append message is at most the core's
 * messageBytesMax (1 MiB by default) plus a little framing, a snapshot chunk at most
 * snapshotChunkBytes (1 MiB by default): 16 MiB leaves room for larger configured
 * values while bounding what one peer can make us allocate.
 */
export const FRAME_BODY_BYTES_MAX_DEFAULT = 16 * 1024 * 1024;

/** Largest configurable maximum: 1 GiB, well inside what a uint32 prefix and one Buffer can hold. */
export const FRAME_BODY_BYTES_MAX_LIMIT = 1024 * 1024 * 1024;

/** Largest MessageType value this protocol version knows. */
const MESSAGE_TYPE_MAX = Math.max(...Object.values(MessageType));

/**
 * A reused Writer's buffer is kept up to this size: 1 MiB. A fresh protobufjs Writer
 * starts at 128 bytes and doubles as it goes, so reuse makes a 2.7 KB append 1.5 to 7
 * times cheaper to encode depending on the run (bench/transport.ts); after a larger
 * frame (a snapshot chunk) the writer is replaced so its memory does not stay pinned.
 */
const WRITER_RETAINED_BYTES_MAX = 1024 * 1024;

let writer = protobuf.Writer.create();

/**
 * Encodes one frame: the 4-byte big-endian body length, then the protobuf body, in one
 * Buffer. Throws TRANSPORT_ERR_FRAME_TOO_LARGE when the body exceeds `frameBodyBytesMax`.
 *
 * The bytes are exactly `frameCodec.encode(frame)` with the prefix in front; the
 * body is encoded with one module-level Writer (encoding is synchronous, so it is never
 * shared between two calls) and copied once into the returned Buffer.
 */
export function encodeFrame(frame: Frame, frameBodyBytesMax: number = FRAME_BODY_BYTES_MAX_DEFAULT): Buffer {
  writer.reset();
  frameType.encode(frame as unknown as Record<string, unknown>, writer);
  const bodyBytes = writer.pos;
  let out: Buffer | undefined;
  if (bodyBytes <= frameBodyBytesMax) {
    out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + bodyBytes);
    writer.finishInto(out, FRAME_HEADER_BYTES);
    out.writeUInt32BE(bodyBytes, 0);
  }
  if (writer.buf.length > WRITER_RETAINED_BYTES_MAX) writer = protobuf.Writer.create();
  if (out === undefined) {
    throw new TransportError(
      TransportErrorCode.FRAME_TOO_LARGE,
      `frame body of ${bodyBytes} bytes exceeds the maximum of ${frameBodyBytesMax} bytes`,
    );
  }
  return out;
}

/**
 * Decodes one frame body (without its prefix). Throws TRANSPORT_ERR_MALFORMED_FRAME
 * when protobuf cannot decode it or it carries a message of an unknown type (which is
 * also how a Frame with neither a handshake nor a message shows up: type 0).
 */
export function decodeFrameBody(body: Uint8Array): Frame {
  let frame: Frame;
  try {
    frame = frameCodec.decode(body);
  } catch (cause) {
    throw new TransportError(TransportErrorCode.MALFORMED_FRAME, `undecodable frame body of ${body.length} bytes`, { cause });
  }
  if (frame.message !== undefined) {
    const type = frame.message.type;
    if (!Number.isInteger(type) || type < 1 || type > MESSAGE_TYPE_MAX) {
      throw new TransportError(TransportErrorCode.MALFORMED_FRAME, `frame carries a message of unknown type ${type}`);
    }
  }
  return frame;
}

/**
 * What the decoder does with each frame: return `false` to stop decoding (the caller
 * is closing the connection; the rest of the bytes are discarded).
 */
export type FrameHandler = (frame: Frame, frameBytes: number) => boolean | void;

/**
 * Incremental decoder for one connection's byte stream. Accepts any chunking: a frame
 * split at every byte, many frames in one chunk. Memory held is at most one partial
 * frame: 4 prefix bytes, then one body buffer of exactly the announced length.
 *
 * After it throws (or a handler returns false) the decoder is finished: further
 * pushes throw the same error (or do nothing).
 */
export class FrameDecoder {
  #frameBodyBytesMax: number;
  readonly #header = Buffer.alloc(FRAME_HEADER_BYTES);
  #headerFilledBytes = 0;
  /** The body being filled, once its prefix is complete and accepted. */
  #body: Buffer | undefined;
  #bodyFilledBytes = 0;
  #failure: TransportError | undefined;
  #stopped = false;

  constructor(frameBodyBytesMax: number = FRAME_BODY_BYTES_MAX_DEFAULT) {
    this.#frameBodyBytesMax = frameBodyBytesMax;
  }

  /** Changes the maximum for the frames that follow (e.g. after the handshake). */
  setFrameBodyBytesMax(frameBodyBytesMax: number): void {
    this.#frameBodyBytesMax = frameBodyBytesMax;
  }

  /** Bytes of a partial frame currently held (prefix included). */
  get bufferedBytes(): number {
    return this.#body === undefined ? this.#headerFilledBytes : FRAME_HEADER_BYTES + this.#bodyFilledBytes;
  }

  /**
   * Feeds bytes; calls `onFrame` for each complete frame, in order. Throws a
   * TransportError on the first bad frame (frames before it were already handed out).
   */
  push(chunk: Uint8Array, onFrame: FrameHandler): void {
    if (this.#failure) throw this.#failure;
    const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let offset = 0;
    while (offset < bytes.length && !this.#stopped) {
      if (this.#body === undefined) {
        let bodyBytes: number;
        if (this.#headerFilledBytes === 0 && bytes.length - offset >= FRAME_HEADER_BYTES) {
          bodyBytes = bytes.readUInt32BE(offset);
          offset += FRAME_HEADER_BYTES;
        } else {
          const take = Math.min(FRAME_HEADER_BYTES - this.#headerFilledBytes, bytes.length - offset);
          bytes.copy(this.#header, this.#headerFilledBytes, offset, offset + take);
          this.#headerFilledBytes += take;
          offset += take;
          if (this.#headerFilledBytes < FRAME_HEADER_BYTES) return;
          bodyBytes = this.#header.readUInt32BE(0);
          this.#headerFilledBytes = 0;
        }
        this.#checkLength(bodyBytes);
        if (bytes.length - offset >= bodyBytes) {
          // The whole body is in this chunk: decode in place, no copy.
          this.#emit(bytes.subarray(offset, offset + bodyBytes), onFrame);
          offset += bodyBytes;
          continue;
        }
        this.#body = Buffer.allocUnsafe(bodyBytes);
        this.#bodyFilledBytes = 0;
      }
      const body = this.#body;
      const take = Math.min(body.length - this.#bodyFilledBytes, bytes.length - offset);
      bytes.copy(body, this.#bodyFilledBytes, offset, offset + take);
      this.#bodyFilledBytes += take;
      offset += take;
      if (this.#bodyFilledBytes === body.length) {
        this.#body = undefined;
        this.#bodyFilledBytes = 0;
        this.#emit(body, onFrame);
      }
    }
  }

  /**
   * The stream ended. Throws TRANSPORT_ERR_MALFORMED_FRAME when it ended inside a
   * frame (a truncated frame is never handed out).
   */
  end(): void {
    if (this.#failure) throw this.#failure;
    if (!this.#stopped && this.bufferedBytes > 0) {
      const expected = this.#body ? `${this.#body.length}-byte body` : `${FRAME_HEADER_BYTES}-byte length prefix`;
      this.#fail(
        new TransportError(TransportErrorCode.MALFORMED_FRAME, `stream ended inside a frame: ${this.bufferedBytes} bytes of a ${expected} received`),
      );
    }
    this.#stopped = true;
  }

  #checkLength(bodyBytes: number): void {
    if (bodyBytes === 0) {
      this.#fail(new TransportError(TransportErrorCode.MALFORMED_FRAME, "zero-length frame"));
    }
    if (bodyBytes > this.#frameBodyBytesMax) {
      this.#fail(
        new TransportError(
          TransportErrorCode.FRAME_TOO_LARGE,
          `frame length prefix announces ${bodyBytes} bytes, over the maximum of ${this.#frameBodyBytesMax} bytes`,
        ),
      );
    }
  }

  #emit(body: Buffer, onFrame: FrameHandler): void {
    let frame: Frame;
    try {
      frame = decodeFrameBody(body);
    } catch (error) {
      this.#fail(error as TransportError);
    }
    if (onFrame(frame, FRAME_HEADER_BYTES + body.length) === false) this.#stopped = true;
  }

  #fail(error: TransportError): never {
    this.#failure = error;
    this.#body = undefined;
    this.#headerFilledBytes = 0;
    this.#bodyFilledBytes = 0;
    throw error;
  }
}
