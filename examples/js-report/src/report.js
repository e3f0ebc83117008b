// example:report — Markdown reports, a cairn task written in JavaScript.
//
// Build: ./build.sh (writes examples/target/js/js-report.wasm).

import { text } from '../../../guest-sdk/js/blob.js';

/** Chunk size for `head`: it usually needs only the start of the blob. */
const HEAD_CHUNK = 64 * 1024;

export const markdown = {
  table(title, rows) {
    const header = ['name', 'count', 'mean', 'min', 'max', 'stddev'];
    const body = rows.map((r) => [
      r.name,
      String(r.count),
      number(r.mean),
      number(r.min),
      number(r.max),
      number(r.stddev),
    ]);
    const align = [':---', ...header.slice(1).map(() => '---:')];
    return `## ${cell(title)}\n\n${render(header, body, align)}`;
  },

  head(csv, n) {
    const rows = [];
    let header = null;
    for (const record of records(text(csv, HEAD_CHUNK))) {
      if (header === null) header = record;
      else rows.push(record);
      if (rows.length >= n) break;
    }
    if (header === null) return '';
    const width = Math.max(header.length, ...rows.map((r) => r.length));
    const pad = (r) => [...r, ...Array(width - r.length).fill('')];
    return render(pad(header), rows.map(pad), Array(width).fill('---'));
  },
};

/** A Markdown table: header line, alignment line, one line per row. */
function render(header, rows, align) {
  const line = (cells) => `| ${cells.map(cell).join(' | ')} |\n`;
  return line(header) + `|${align.join('|')}|\n` + rows.map(line).join('');
}

/** `s` made safe for one table cell. */
function cell(s) {
  return s.replaceAll('\\', '\\\\').replaceAll('|', '\\|').replace(/\r?\n/g, ' ');
}

/** `x` with three decimals; the same text for the same value everywhere. */
function number(x) {
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  const s = x.toFixed(3);
  return /^-0\.0*$/.test(s) ? s.slice(1) : s;
}

/**
 * Yields the records (arrays of fields) of CSV text arriving in `pieces`:
 * commas, fields in double quotes (with `""` for a quote, and commas or
 * newlines inside), LF or CRLF line ends. Blank lines are skipped.
 */
function* records(pieces) {
  let record = [];
  let field = '';
  let quoted = false; // inside a quoted field
  let quote = false; // just saw a `"` inside a quoted field
  for (const piece of pieces) {
    for (const c of piece) {
      if (quoted) {
        if (quote) {
          quote = false;
          if (c === '"') {
            field += c;
            continue;
          }
          quoted = false; // the quote closed the field; read `c` unquoted
        } else {
          if (c === '"') quote = true;
          else field += c;
          continue;
        }
      }
      if (c === '"' && field === '') quoted = true;
      else if (c === ',') {
        record.push(field);
        field = '';
      } else if (c === '\n') {
        record.push(field);
        field = '';
        if (record.length > 1 || record[0] !== '') yield record;
        record = [];
      } else if (c !== '\r') field += c;
    }
  }
  record.push(field);
  if (record.length > 1 || record[0] !== '') yield record;
}
