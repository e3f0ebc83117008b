// Blobs for cairn tasks written in JavaScript.
//
// A thin layer over the `cairn:task/blobs@0.1.0` import that componentize-js
// generates from `wit/task.wit`: a blob is immutable bytes held by the host and
// passed by hash, so a task reads it in chunks instead of copying it whole.
//
//   import { chunks, lines, length, readText, fromText } from 'cairn-task';
//
// Lengths and offsets are JavaScript numbers (exact up to 8 PiB); the raw
// resource methods (`blob.len()`, `blob.read(offset, len)`) take and return
// BigInt, as the WIT `u64` maps to BigInt.

import { Blob, BlobWriter } from 'cairn:task/blobs@0.1.0';

export { Blob, BlobWriter };

/** The chunk size `chunks` and `lines` read by default: 1 MiB. */
export const CHUNK = 1 << 20;

/** The blob's length in bytes. */
export function length(blob) {
  return Number(blob.len());
}

/** The blob's blake3 hash, as 64 lowercase hex digits. */
export function hash(blob) {
  return blob.hash();
}

/** Up to `len` bytes from `offset` (fewer at the end, none past it). */
export function read(blob, offset, len) {
  return blob.read(BigInt(offset), BigInt(len));
}

/** Yields the blob's bytes in order, as Uint8Arrays of at most `size` bytes. */
export function* chunks(blob, size = CHUNK) {
  let offset = 0n;
  const want = BigInt(size);
  for (;;) {
    const chunk = blob.read(offset, want);
    if (chunk.length === 0) return;
    yield chunk;
    offset += BigInt(chunk.length);
  }
}

/** The blob's whole content as one Uint8Array (copies it into the task). */
export function readAll(blob) {
  const all = new Uint8Array(length(blob));
  let at = 0;
  for (const chunk of chunks(blob)) {
    all.set(chunk, at);
    at += chunk.length;
  }
  return all;
}

/** Yields the blob's text (UTF-8) in pieces, one per chunk read. */
export function* text(blob, size = CHUNK) {
  const decoder = new TextDecoder('utf-8');
  for (const chunk of chunks(blob, size)) {
    const piece = decoder.decode(chunk, { stream: true });
    if (piece) yield piece;
  }
  const rest = decoder.decode();
  if (rest) yield rest;
}

/** The blob's whole content as a string (UTF-8). */
export function readText(blob) {
  let all = '';
  for (const piece of text(blob)) all += piece;
  return all;
}

/**
 * Yields the blob's lines (UTF-8, without their `\n` or `\r\n`), reading
 * chunk by chunk: stopping early reads no further. A final line without a
 * newline is yielded too; an empty blob has no lines.
 */
export function* lines(blob, size = CHUNK) {
  let pending = '';
  for (const piece of text(blob, size)) {
    pending += piece;
    let start = 0;
    for (let nl = pending.indexOf('\n'); nl !== -1; nl = pending.indexOf('\n', start)) {
      yield stripCr(pending.slice(start, nl));
      start = nl + 1;
    }
    pending = pending.slice(start);
  }
  if (pending) yield stripCr(pending);
}

function stripCr(line) {
  return line.endsWith('\r') ? line.slice(0, -1) : line;
}

/** A new blob of `bytes` (a Uint8Array). */
export function fromBytes(bytes) {
  return new Blob(bytes);
}

/** A new blob of `text`, encoded as UTF-8. */
export function fromText(text) {
  return new Blob(new TextEncoder().encode(text));
}

/**
 * A new blob of every part in `parts` (an iterable of strings, encoded as
 * UTF-8, or Uint8Arrays), written piece by piece: for outputs too big to
 * hold as one array.
 */
export function fromParts(parts) {
  const writer = new BlobWriter();
  const encoder = new TextEncoder();
  for (const part of parts) {
    writer.write(typeof part === 'string' ? encoder.encode(part) : part);
  }
  return BlobWriter.finish(writer);
}
