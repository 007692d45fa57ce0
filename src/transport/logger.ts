/**
 * The logger the transport writes to: one structured line per event. `fields` carries
 * the detail (peer id, remote address, error code) so lines can be filtered by field.
 */
export interface TransportLogger {
  info(message: string, fields: Record<string, unknown>): void;
  warn(message: string, fields: Record<string, unknown>): void;
  error(message: string, fields: Record<string, unknown>): void;
}

/** Discards everything: the default when the host passes no logger. */
export const silentLogger: TransportLogger = {
  info: () => {},
  warn: () => {},
  error: () => {},
};
