/**
 * Error classes that carry the process exit code the CLI must use.
 * 2 = bad usage, config or data (the user must change an input); 1 = runtime failure.
 */
export class ResflowError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode: number) {
    super(message);
    this.name = new.target.name;
    this.exitCode = exitCode;
  }
}

/** A command-line mistake: unknown flag, missing argument, malformed --set. */
export class UsageError extends ResflowError {
  constructor(message: string) {
    super(message, 2);
  }
}

/** An experiment config that does not fit the schema. Message names file, line and key path. */
export class ConfigError extends ResflowError {
  constructor(message: string) {
    super(message, 2);
  }
}

/** Input data that breaks the data contract: missing column, wrong type, truncated file. */
export class DataError extends ResflowError {
  constructor(message: string) {
    super(message, 2);
  }
}

/** A failure while running (non-finite loss, I/O failure writing a run). */
export class RuntimeFailure extends ResflowError {
  constructor(message: string) {
    super(message, 1);
  }
}

/**
 * Raised when the user interrupts (Ctrl-C, or SIGTERM from a scheduler) so callers can unwind and
 * record `interrupted`. Exit code 128 + the signal's number: 130 for SIGINT, 143 for SIGTERM.
 */
export class Interrupted extends ResflowError {
  constructor(message = 'interrupted', exitCode = 130) {
    super(message, exitCode);
  }
}
