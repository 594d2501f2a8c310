// Exit codes are part of the contract with CI and the on-call: documented in README.md.
export const EXIT = {
  ok: 0,
  stepFailed: 1,
  badInput: 2,
  precondition: 3,
  gateFailed: 4,
  interrupted: 130,
  terminated: 143,
} as const

export class RunbookError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    /** What the on-call should do next. */
    readonly next?: string,
  ) {
    super(message)
    this.name = new.target.name
  }
}

/** Bad input: env file, flag, argument. Nothing was changed. */
export class InputError extends RunbookError {
  constructor(
    message: string,
    readonly problems: string[] = [],
    next?: string,
  ) {
    super(
      problems.length ? `${message}\n${problems.map((p) => `  - ${p}`).join('\n')}` : message,
      EXIT.badInput,
      next,
    )
  }
}

/** A precondition failed (host unreachable, host key changed, lock held). Nothing was changed. */
export class PreconditionError extends RunbookError {
  constructor(message: string, next?: string) {
    super(message, EXIT.precondition, next)
  }
}

/** A command on a host failed, timed out or lost its connection. */
export class CommandError extends RunbookError {
  constructor(
    message: string,
    readonly host: string,
    readonly command: string,
    readonly status: number | string,
    readonly stderrTail: string,
    next?: string,
  ) {
    super(message, EXIT.stepFailed, next)
  }
}

/** The host answered but refused the login (wrong key or user, or root login disabled). */
export class LoginRefusedError extends PreconditionError {}

/** The host did not answer at all (droplet gone, address wrong, firewall): no SSH handshake. */
export class UnreachableError extends PreconditionError {}

/** A backup failed its integrity check (tag, checksum, truncation, order, key). Nothing was restored. */
export class IntegrityError extends PreconditionError {}
