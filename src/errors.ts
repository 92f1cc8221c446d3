/**
 * Typed domain errors. Domain code throws these; the API maps them to Nova's fault
 * bodies and the CLI to one `error: ...` line, each in one place. Anything else is a
 * bug: logged with its stack, answered generically.
 */

export type ErrorKind = 'invalid' | 'not_found' | 'conflict' | 'forbidden' | 'quota' | 'unavailable';

export abstract class NovanetError extends Error {
  abstract readonly kind: ErrorKind;
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The request itself is wrong: bad value, malformed CIDR, unknown option. */
export class Invalid extends NovanetError {
  readonly kind = 'invalid';
}

export class NotFound extends NovanetError {
  readonly kind = 'not_found';
}

/** The request is well formed but clashes with the current state. */
export class Conflict extends NovanetError {
  readonly kind = 'conflict';
}

export class Forbidden extends NovanetError {
  readonly kind = 'forbidden';
}

export class QuotaExceeded extends NovanetError {
  readonly kind = 'quota';
}

/** A dependency (database, kernel) could not do its part; retrying may help. */
export class Unavailable extends NovanetError {
  readonly kind = 'unavailable';
}

// nova's names, kept because operators search logs and docs for them.
export class NoMoreFixedIps extends Conflict {}
export class NoMoreNetworks extends Conflict {}
export class NetworkInUse extends Conflict {}
export class NetworkHasProject extends Conflict {}
export class DuplicateVlan extends Conflict {}
export class CidrConflict extends Conflict {}
export class FixedIpAlreadyInUse extends Conflict {}
export class NetworkNotFound extends NotFound {}
export class FixedIpNotFound extends NotFound {}
export class FloatingIpNotFound extends NotFound {}
/** nova: a FloatingIpNotFound, answered 404 by its API; kept so clients see the same. */
export class NoMoreFloatingIps extends FloatingIpNotFound {}
export class FloatingIpPoolNotFound extends NotFound {}
/**
 * nova's API answered 400 for both ("floating IP is already associated", "... is not
 * associated"): the request names the wrong state, so both are Invalid.
 */
export class FloatingIpAssociated extends Invalid {}
export class FloatingIpNotAssociated extends Invalid {}

export function isNovanetError(error: unknown): error is NovanetError {
  return error instanceof NovanetError;
}
