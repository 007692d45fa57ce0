import { describe, expect, it } from "vitest";
import { frameCodec, type Frame } from "../../src/proto/schema.js";
import { TransportError, TransportErrorCode } from "../../src/transport/errors.js";
import {
  decodeFrameBody,
  encodeFrame,
  FRAME_BODY_BYTES_MAX_DEFAULT,
  FRAME_HEADER_BYTES,
  FrameDecoder,
} from "../../src/transport/framing.js";
import { appendMessage, heartbeat, snapshotChunk } from "./helpers.js";

function decodeAll(decoder: FrameDecoder, chunks: Uint8Array[]): Frame[] {
  const frames: Frame[] = [];
  for (const chunk of chunks) decoder.push(chunk, (frame) => void frames.push(frame));
  return frames;
}

function framePrefix(bodyBytes: number): Buffer {
  const prefix = Buffer.alloc(FRAME_HEADER_BYTES);
  prefix.writeUInt32BE(bodyBytes, 0);
  return prefix;
}

function expectTransportError(action: () => void, code: string): TransportError {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(TransportError);
    expect((error as TransportError).code).toBe(code);
    return error as TransportError;
  }
  throw new Error(`expected a TransportError ${code}`);
}

const sampleFrames: Frame[] = [
  { handshake: { protocolVersion: 1, clusterId: "c", nodeId: 2 ** 40, peerAddress: "", refusal: "", removed: false } },
  { message: heartbeat(1, 2, 7) },
  { message: appendMessage(1, 2, 10, 256) },
  { message: snapshotChunk(1, 2, 4096, 1000, true) },
];

describe("frame encoding", () => {
  it("writes a 4-byte big-endian body length, then the protobuf Frame", () => {
    const bytes = encodeFrame({ message: heartbeat(1, 2) });
    const body = frameCodec.encode({ message: heartbeat(1, 2) });
    expect(bytes.readUInt32BE(0)).toBe(body.length);
    expect(Buffer.compare(bytes.subarray(FRAME_HEADER_BYTES), Buffer.from(body))).toBe(0);
  });

  it("produces exactly frameCodec's bytes, also after a frame large enough to replace the reused writer", () => {
    const frames: Frame[] = [...sampleFrames, { message: snapshotChunk(1, 2, 0, 3 * 1024 * 1024) }, ...sampleFrames];
    for (const frame of frames) {
      const bytes = encodeFrame(frame);
      expect(bytes.readUInt32BE(0)).toBe(bytes.length - FRAME_HEADER_BYTES);
      expect(bytes.subarray(FRAME_HEADER_BYTES).equals(Buffer.from(frameCodec.encode(frame)))).toBe(true);
    }
  });

  it("refuses to encode a body over the maximum, and encodes normally afterwards", () => {
    const frame: Frame = { message: appendMessage(1, 2, 1, 1000) };
    const bodyBytes = encodeFrame(frame).length - FRAME_HEADER_BYTES;
    expect(encodeFrame(frame, bodyBytes).length).toBe(bodyBytes + FRAME_HEADER_BYTES);
    expectTransportError(() => encodeFrame(frame, bodyBytes - 1), TransportErrorCode.FRAME_TOO_LARGE);
    expect(decodeFrameBody(encodeFrame({ message: heartbeat(1, 2) }).subarray(FRAME_HEADER_BYTES)).message?.type).toBe(heartbeat(1, 2).type);
  });

  it("the default maximum is 16 MiB", () => {
    expect(FRAME_BODY_BYTES_MAX_DEFAULT).toBe(16 * 1024 * 1024);
  });
});

describe("frame decoding", () => {
  it("round-trips frames fed in one chunk, many frames per chunk", () => {
    const stream = Buffer.concat(sampleFrames.map((frame) => encodeFrame(frame)));
    const frames = decodeAll(new FrameDecoder(), [stream]);
    expect(frames).toHaveLength(sampleFrames.length);
    expect(frames[0].handshake).toEqual(sampleFrames[0].handshake);
    expect(frames[1].message).toEqual(sampleFrames[1].message);
    expect(frames[2].message?.entries.map((e) => e.data.length)).toEqual(Array(10).fill(256));
    expect(frames[3].message?.snapshot?.offset).toBe(4096);
    expect(frames[3].message?.snapshot?.done).toBe(true);
  });

  it("decodes the same frames when the stream is split at every byte", () => {
    const stream = Buffer.concat(sampleFrames.map((frame) => encodeFrame(frame)));
    const chunks = Array.from(stream, (byte) => Uint8Array.of(byte));
    const frames = decodeAll(new FrameDecoder(), chunks);
    expect(frames.map((f) => f.message ?? f.handshake)).toEqual(decodeAll(new FrameDecoder(), [stream]).map((f) => f.message ?? f.handshake));
  });

  it("decodes the same frames at every two-way split point", () => {
    const stream = Buffer.concat(sampleFrames.slice(0, 2).map((frame) => encodeFrame(frame)));
    const whole = decodeAll(new FrameDecoder(), [stream]);
    for (let split = 0; split <= stream.length; split++) {
      const frames = decodeAll(new FrameDecoder(), [stream.subarray(0, split), stream.subarray(split)]);
      expect(frames).toEqual(whole);
    }
  });

  it("reports the size of each frame, prefix included", () => {
    const bytes = encodeFrame({ message: heartbeat(1, 2) });
    const sizes: number[] = [];
    new FrameDecoder().push(Buffer.concat([bytes, bytes]), (_frame, frameBytes) => void sizes.push(frameBytes));
    expect(sizes).toEqual([bytes.length, bytes.length]);
  });

  it("accepts a frame of exactly the maximum and refuses one byte more, before buffering its body", () => {
    const frame = encodeFrame({ message: appendMessage(1, 2, 1, 500) });
    const bodyBytes = frame.length - FRAME_HEADER_BYTES;
    expect(decodeAll(new FrameDecoder(bodyBytes), [frame])).toHaveLength(1);

    const decoder = new FrameDecoder(bodyBytes - 1);
    // The prefix alone is enough to refuse: no body byte has been sent yet.
    const error = expectTransportError(() => decodeAll(decoder, [frame.subarray(0, FRAME_HEADER_BYTES)]), TransportErrorCode.FRAME_TOO_LARGE);
    expect(error.message).toContain(String(bodyBytes));
    expect(decoder.bufferedBytes).toBe(0);
  });

  it("refuses a 4 GiB length prefix without allocating it", () => {
    const decoder = new FrameDecoder();
    expectTransportError(() => decodeAll(decoder, [Buffer.from([0xff, 0xff, 0xff, 0xff])]), TransportErrorCode.FRAME_TOO_LARGE);
  });

  it("refuses a zero-length frame", () => {
    expectTransportError(() => decodeAll(new FrameDecoder(), [framePrefix(0)]), TransportErrorCode.MALFORMED_FRAME);
  });

  it("refuses a garbage body", () => {
    const garbage = Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]);
    expectTransportError(() => decodeAll(new FrameDecoder(), [Buffer.concat([framePrefix(garbage.length), garbage])]), TransportErrorCode.MALFORMED_FRAME);
  });

  it("refuses a body that decodes to no handshake and no known message", () => {
    // Field 15, varint 1: valid protobuf, but a Frame with neither body.
    const unknownField = Buffer.from([0x78, 0x01]);
    expectTransportError(() => decodeFrameBody(unknownField), TransportErrorCode.MALFORMED_FRAME);
    // A message whose type is outside the enum.
    const body = frameCodec.encode({ message: { ...heartbeat(1, 2), type: 99 as never } });
    expectTransportError(() => decodeFrameBody(body), TransportErrorCode.MALFORMED_FRAME);
  });

  it("hands out the frames before a bad one, then stays failed", () => {
    const good = encodeFrame({ message: heartbeat(1, 2) });
    const decoder = new FrameDecoder();
    const frames: Frame[] = [];
    expectTransportError(
      () => decoder.push(Buffer.concat([good, framePrefix(0), good]), (frame) => void frames.push(frame)),
      TransportErrorCode.MALFORMED_FRAME,
    );
    expect(frames).toHaveLength(1);
    expectTransportError(() => decoder.push(good, () => {}), TransportErrorCode.MALFORMED_FRAME);
  });

  it("reports a stream truncated inside the prefix or the body at its end", () => {
    const frame = encodeFrame({ message: appendMessage(1, 2, 2, 64) });
    for (const cut of [1, FRAME_HEADER_BYTES - 1, FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + 10, frame.length - 1]) {
      const decoder = new FrameDecoder();
      expect(decodeAll(decoder, [frame.subarray(0, cut)])).toHaveLength(0);
      expect(decoder.bufferedBytes).toBe(cut);
      const error = expectTransportError(() => decoder.end(), TransportErrorCode.MALFORMED_FRAME);
      expect(error.message).toContain("ended inside a frame");
    }
    const complete = new FrameDecoder();
    expect(decodeAll(complete, [frame])).toHaveLength(1);
    expect(() => complete.end()).not.toThrow();
  });

  it("stops decoding when the handler returns false", () => {
    const good = encodeFrame({ message: heartbeat(1, 2) });
    const decoder = new FrameDecoder();
    let seen = 0;
    decoder.push(Buffer.concat([good, good, good]), () => {
      seen++;
      return false;
    });
    expect(seen).toBe(1);
  });

  it("applies a raised maximum to the frames after the handler raised it", () => {
    const small = encodeFrame({ handshake: { protocolVersion: 1, clusterId: "c", nodeId: 1, peerAddress: "", refusal: "", removed: false } });
    const large = encodeFrame({ message: appendMessage(1, 2, 4, 256) });
    const decoder = new FrameDecoder(64);
    const frames: Frame[] = [];
    decoder.push(Buffer.concat([small, large]), (frame) => {
      frames.push(frame);
      decoder.setFrameBodyBytesMax(FRAME_BODY_BYTES_MAX_DEFAULT);
    });
    expect(frames).toHaveLength(2);
  });
});
