/**
 * What an HTTP request header may be, as the poller writes it (src/watch/http1.ts) and as the config checks it
 * (src/config/schema.ts): one definition for both.
 */

/** A header name: an RFC 9110 token. */
export const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * A header value: tab, space, visible ASCII and 0x80-0xFF. The request head is written as latin1, one byte a
 * character, so anything beyond latin-1 would lose its high byte (U+010D would go out as a CR: a second request).
 */
export const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** Headers that frame the request or the connection: the client's own to set. */
export const FRAMING_HEADERS: ReadonlySet<string> = new Set(['content-length', 'transfer-encoding', 'connection']);
