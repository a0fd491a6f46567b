import { UpbridgeError } from './errors';

/**
 * One place builds option errors so they read the same everywhere:
 * "scale must be a number from 1 to 16, got 20".
 */
export function invalidOption(name: string, allowed: string, value: unknown): UpbridgeError {
  return new UpbridgeError('UPB_INVALID_OPTION', `${name} must be ${allowed}, got ${describe(value)}`, {
    option: name,
    allowed,
    value: describe(value),
  });
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value == null) return String(value);
  return typeof value;
}

/** Accepts numbers and numeric strings (CLI and query strings give strings). */
function toNumber(value: unknown): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && value.trim() !== '') return Number(value);
  return NaN;
}

export function numberInRange(name: string, value: unknown, min: number, max: number): number {
  const n = toNumber(value);
  if (!Number.isFinite(n) || n < min || n > max) {
    throw invalidOption(name, `a number from ${min} to ${max}`, value);
  }
  return n;
}

export function integerInRange(name: string, value: unknown, min: number, max: number): number {
  const n = toNumber(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw invalidOption(name, `an integer from ${min} to ${max}`, value);
  }
  return n;
}

export function oneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T;
  throw invalidOption(name, `one of ${allowed.join(', ')}`, value);
}
