import { inspect } from 'node:util';

const REDACTED = '[redacted]';

/**
 * A secret value (password, token, header value). It prints as `[redacted]` in every way a value can
 * reach a log, a JSON document or the console; only `reveal()` gives the text, at the point of use.
 */
export class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  reveal(): string {
    return this.#value;
  }
  toString(): string {
    return REDACTED;
  }
  toJSON(): string {
    return REDACTED;
  }
  [inspect.custom](): string {
    return REDACTED;
  }
}

export const REDACTED_TEXT = REDACTED;
