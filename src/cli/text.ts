/**
 * Small text helpers of the CLI: previews, aligned tables, the index option, a progress
 * bar, and writes that wait for a slow pipe.
 */
import { InvalidArgumentError } from "commander";
import type { TextOutput } from "./io.js";

/** Characters of a payload shown by `wal dump`: enough to recognise a command, short enough for one line. */
export const PREVIEW_CHARACTERS_MAX = 40;
/** Bytes shown as hex when a payload is not text. */
export const PREVIEW_HEX_BYTES_MAX = 16;
/** Width of the progress bar, in characters. */
export const PROGRESS_BAR_CHARACTERS = 30;

const decoder = new TextDecoder("utf-8", { fatal: true });

/** A short one-line preview: quoted text when the bytes are printable UTF-8, hex otherwise. */
export function preview(bytes: Uint8Array): string {
  if (bytes.length === 0) return "(empty)";
  let text: string | undefined;
  try {
    text = decoder.decode(bytes.subarray(0, PREVIEW_CHARACTERS_MAX * 4));
  } catch {
    text = undefined; // not UTF-8 (or cut inside a character): show hex
  }
  // eslint-disable-next-line no-control-regex
  if (text !== undefined && !/[\u0000-\u0008\u000b-\u001f\u007f]/.test(text)) {
    const shown = text.length > PREVIEW_CHARACTERS_MAX ? `${text.slice(0, PREVIEW_CHARACTERS_MAX)}...` : text;
    return JSON.stringify(shown);
  }
  const hex = Buffer.from(bytes.subarray(0, PREVIEW_HEX_BYTES_MAX)).toString("hex");
  return `0x${hex}${bytes.length > PREVIEW_HEX_BYTES_MAX ? "..." : ""}`;
}

/** Rows of cells as left-aligned columns separated by two spaces. */
export function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, k) => (widths[k] = Math.max(widths[k] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, k) => (k === row.length - 1 ? cell : cell.padEnd(widths[k]))).join("  ").trimEnd()).join("\n") + "\n";
}

/** Parses a non-negative integer option (`--from 12`); commander turns the error into a one-line message. */
export function parseIndexOption(value: string): number {
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) throw new InvalidArgumentError("expected a non-negative integer");
  return Number(value);
}

/** A progress bar drawn on a terminal (and nothing elsewhere). */
export class ProgressBar {
  private drawn = false;

  constructor(
    private readonly output: TextOutput,
    private readonly label: string,
  ) {}

  update(done: number, total: number): void {
    if (!this.output.isTTY || total <= 0) return;
    const filled = Math.round((done / total) * PROGRESS_BAR_CHARACTERS);
    this.output.write(`\r${this.label} [${"#".repeat(filled)}${".".repeat(PROGRESS_BAR_CHARACTERS - filled)}] ${done}/${total}`);
    this.drawn = true;
  }

  /** Erases the bar so the result lines start clean. */
  clear(): void {
    if (this.drawn) this.output.write("\r\x1b[K");
    this.drawn = false;
  }
}

/** Writes to a stream, waiting for it to drain when it asks (a large dump into a slow pipe). */
export async function writeWithBackpressure(output: TextOutput, text: string): Promise<void> {
  const accepted = output.write(text);
  const stream = output as TextOutput & { once?: (event: string, listener: () => void) => void };
  if (accepted === false && typeof stream.once === "function") await new Promise<void>((resolve) => stream.once!("drain", resolve));
}
