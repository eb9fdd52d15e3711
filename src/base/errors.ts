/**
 * Typed errors with stable codes (the fastify/undici way): callers branch on `code`,
 * people read `message`.
 */
export type OutpostErrorCode =
  | 'OUTPOST_INVALID_FLAG'
  | 'OUTPOST_INVALID_WEB_CONFIG'
  | 'OUTPOST_DOCKER_UNAVAILABLE'
  | 'OUTPOST_NAMESPACE_UNREADABLE'
  | 'OUTPOST_INVALID_POLICY_FILE'
  | 'OUTPOST_INVALID_POLICY_LABEL';

export class OutpostError extends Error {
  readonly code: OutpostErrorCode;

  constructor(code: OutpostErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'OutpostError';
    this.code = code;
  }
}

/** A flag or environment value that cannot be used; main exits 2 with this message. */
export class InvalidFlagError extends OutpostError {
  readonly flag: string;

  constructor(flag: string, message: string) {
    super('OUTPOST_INVALID_FLAG', message);
    this.name = 'InvalidFlagError';
    this.flag = flag;
  }
}

/** `file:line`, or `file` alone for line 0 (a problem that is no one line's). */
export function fileAndLine(file: string, line: number): string {
  return line > 0 ? `${file}:${line}` : file;
}

/** A file named by a flag that cannot be used: `invalid --flag: file:line: reason`. */
export class InvalidFileError extends OutpostError {
  readonly file: string;
  /** 1-based; 0 when the problem is not one line's (the file cannot be read, a certificate does not load). */
  readonly line: number;

  constructor(code: OutpostErrorCode, flag: string, file: string, line: number, reason: string, cause?: unknown) {
    super(code, `invalid ${flag}: ${fileAndLine(file, line)}: ${reason}`, { cause });
    this.file = file;
    this.line = line;
  }
}

/** A --web.config.file that cannot be used; at start main exits 2, on a reload the old one stays. */
export class InvalidWebConfigError extends InvalidFileError {
  constructor(file: string, line: number, reason: string, cause?: unknown) {
    super('OUTPOST_INVALID_WEB_CONFIG', '--web.config.file', file, line, reason, cause);
    this.name = 'InvalidWebConfigError';
  }
}

/** A --policy.file that cannot be used; at start main exits 2, on a reload the running policy stays. */
export class InvalidPolicyFileError extends InvalidFileError {
  constructor(file: string, line: number, reason: string, cause?: unknown) {
    super('OUTPOST_INVALID_POLICY_FILE', '--policy.file', file, line, reason, cause);
    this.name = 'InvalidPolicyFileError';
  }
}

/** An entry of a container's outpost.allow.* label that does not parse; it allows nothing. */
export class PolicyLabelError extends OutpostError {
  readonly container: string;
  readonly label: string;

  constructor(container: string, label: string, reason: string) {
    super('OUTPOST_INVALID_POLICY_LABEL', `container ${container}: label ${label}: ${reason}`);
    this.name = 'PolicyLabelError';
    this.container = container;
    this.label = label;
  }
}

/** The Docker API did not answer; the scrape reports outpost_up 0. */
export class DockerUnavailableError extends OutpostError {
  constructor(message: string, cause: unknown) {
    super('OUTPOST_DOCKER_UNAVAILABLE', message, { cause });
    this.name = 'DockerUnavailableError';
  }
}

/** The procfs files of a container could not be read (it exited, or outpost lacks the right). */
export class NamespaceUnreadableError extends OutpostError {
  constructor(message: string, cause: unknown) {
    super('OUTPOST_NAMESPACE_UNREADABLE', message, { cause });
    this.name = 'NamespaceUnreadableError';
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
