/** The logging surface the library uses: a subset of pino's Logger, so a pino instance fits as is. */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

const noop = (): void => {};

/** The library is silent unless given a logger. */
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };
