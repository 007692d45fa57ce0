/**
 * One small structured logger for the whole runtime, on pino: JSON lines on stderr
 * (or a destination stream), a level, and child loggers that carry fixed fields
 * (node id, component).
 */
import pino from "pino";

export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

class PinoLogger implements Logger {
  constructor(private readonly base: pino.Logger) {}
  debug(message: string, fields: Record<string, unknown> = {}): void {
    this.base.debug(fields, message);
  }
  info(message: string, fields: Record<string, unknown> = {}): void {
    this.base.info(fields, message);
  }
  warn(message: string, fields: Record<string, unknown> = {}): void {
    this.base.warn(fields, message);
  }
  error(message: string, fields: Record<string, unknown> = {}): void {
    this.base.error(fields, message);
  }
  child(fields: Record<string, unknown>): Logger {
    return new PinoLogger(this.base.child(fields));
  }
}

/** A logger writing JSON lines at `level` and above to `destination` (default stderr). */
export function createLogger(options: { level?: LogLevel; destination?: NodeJS.WritableStream } = {}): Logger {
  const destination = options.destination ?? pino.destination({ fd: 2, sync: false });
  return new PinoLogger(pino({ level: options.level ?? "info", base: undefined }, destination as pino.DestinationStream));
}

/** Drops everything. */
export const silentLogger: Logger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  child: () => silentLogger,
};
