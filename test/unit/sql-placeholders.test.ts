import { leadingKeyword, rewritePlaceholders } from '../../src/sql/placeholders';

const declared = new Set(['name', 'since', 'n']);

describe('rewritePlaceholders', () => {
  it('rewrites declared :name placeholders to $name and lists the names used', () => {
    expect(rewritePlaceholders('SELECT * FROM p WHERE family = :name AND born >= :since OR family = :name', declared)).toEqual({
      sql: 'SELECT * FROM p WHERE family = $name AND born >= $since OR family = $name',
      used: ['name', 'since'],
    });
  });

  it('leaves string literals, quoted identifiers, comments and dollar-quoted strings alone', () => {
    const sql = `SELECT ':name', 'it''s :name', ":name" FROM p -- :name\n/* :since */ WHERE x = $$ :n $$ AND y = $t$ :n $t$ AND z = :n`;
    expect(rewritePlaceholders(sql, declared)).toEqual({ sql: sql.replace(/= :n$/, '= $n'), used: ['n'] });
  });

  it('leaves :: casts and undeclared names to the engine', () => {
    expect(rewritePlaceholders("SELECT '1'::INTEGER, x::name, list[1:n], :other FROM p WHERE a=:n", declared)).toEqual({
      sql: "SELECT '1'::INTEGER, x::name, list[1:n], :other FROM p WHERE a=$n",
      used: ['n'],
    });
  });

  it('keeps an unterminated literal or comment as text (the engine reports the syntax error)', () => {
    expect(rewritePlaceholders("SELECT ':name", declared)).toEqual({ sql: "SELECT ':name", used: [] });
    expect(rewritePlaceholders('SELECT 1 /* :name', declared)).toEqual({ sql: 'SELECT 1 /* :name', used: [] });
  });
});

describe('leadingKeyword', () => {
  it('reads the first word past whitespace, comments and parentheses', () => {
    expect(leadingKeyword('  -- a comment\n /* another */ (( select 1))')).toBe('SELECT');
    expect(leadingKeyword('WITH x AS (SELECT 1) SELECT * FROM x')).toBe('WITH');
    expect(leadingKeyword('PRAGMA database_list')).toBe('PRAGMA');
    expect(leadingKeyword('')).toBe('');
  });
});
