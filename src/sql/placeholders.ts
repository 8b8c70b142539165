/**
 * SQLQuery parameters are written `:name` (SQL on FHIR v2, SQLQuery profile); DuckDB binds
 * `$name`. The rewrite is a tokenizer, not a search: a `:name` inside a string literal, a quoted
 * identifier, a comment or a dollar-quoted string is text, `::` is a cast, and only declared
 * names are placeholders. Values are then bound by the engine, never spliced into the text.
 */

const IDENT_START = /[A-Za-z_]/;
const IDENT_PART = /[A-Za-z0-9_]/;

/** The end (exclusive) of a quoted run that opened at `start` with `quote`; a doubled quote is an escaped one. */
function quotedEnd(sql: string, start: number, quote: string): number {
  for (let i = start + 1; i < sql.length; i++) {
    if (sql[i] !== quote) continue;
    if (sql[i + 1] === quote) i++;
    else return i + 1;
  }
  return sql.length;
}

/** `$tag$ ... $tag$` (or `$$ ... $$`) at `start`, if one opens there: its end (exclusive). */
function dollarQuotedEnd(sql: string, start: number): number | undefined {
  const tag = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(start));
  if (!tag) return undefined;
  const close = sql.indexOf(tag[0], start + tag[0].length);
  return close === -1 ? sql.length : close + tag[0].length;
}

export interface RewrittenSql {
  sql: string;
  /** Declared names the text uses, in order of first use. */
  used: string[];
}

export function rewritePlaceholders(sql: string, declared: ReadonlySet<string>): RewrittenSql {
  let out = '';
  const used: string[] = [];
  let i = 0;
  while (i < sql.length) {
    const c = sql[i]!;
    let end: number | undefined;
    if (c === "'" || c === '"') end = quotedEnd(sql, i, c);
    else if (c === '-' && sql[i + 1] === '-') end = sql.indexOf('\n', i) === -1 ? sql.length : sql.indexOf('\n', i);
    else if (c === '/' && sql[i + 1] === '*') end = sql.indexOf('*/', i + 2) === -1 ? sql.length : sql.indexOf('*/', i + 2) + 2;
    else if (c === '$') end = dollarQuotedEnd(sql, i);
    else if (c === ':' && sql[i + 1] === ':') end = i + 2; // a cast
    else if (c === ':' && IDENT_START.test(sql[i + 1] ?? '') && !IDENT_PART.test(sql[i - 1] ?? '')) {
      let j = i + 1;
      while (j < sql.length && IDENT_PART.test(sql[j]!)) j++;
      const name = sql.slice(i + 1, j);
      if (declared.has(name)) {
        out += `$${name}`;
        if (!used.includes(name)) used.push(name);
        i = j;
        continue;
      }
      end = j; // not a declared parameter: left to the engine (a slice bound, say)
    }
    end ??= i + 1;
    out += sql.slice(i, end);
    i = end;
  }
  return { sql: out, used };
}

/** The first word of the statement, past whitespace, comments and opening parentheses (upper case). */
export function leadingKeyword(sql: string): string {
  let i = 0;
  for (;;) {
    while (i < sql.length && (/\s/.test(sql[i]!) || sql[i] === '(')) i++;
    if (sql.startsWith('--', i)) i = sql.indexOf('\n', i) === -1 ? sql.length : sql.indexOf('\n', i);
    else if (sql.startsWith('/*', i)) i = sql.indexOf('*/', i) === -1 ? sql.length : sql.indexOf('*/', i) + 2;
    else break;
  }
  return (/^[A-Za-z]+/.exec(sql.slice(i))?.[0] ?? '').toUpperCase();
}
