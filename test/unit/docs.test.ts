/**
 * The docs stay true to the code: every setting `src/config.ts` reads is listed in
 * docs/configuration.md, and every link between the README and docs/ pages lands on a page and a
 * heading that exist.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(__dirname, '../..');
const read = (file: string) => readFileSync(path.join(root, file), 'utf8');
const pages = ['README.md', ...readdirSync(path.join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

/** GitHub's heading anchor. */
const slug = (heading: string) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}_\- ]/gu, '')
    .replace(/ /g, '-');

/** Headings outside code blocks. */
function anchorsOf(text: string): Set<string> {
  const anchors = new Set<string>();
  let fenced = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    const heading = !fenced && /^#{1,6} (.*)$/.exec(line);
    if (heading) anchors.add(slug(heading[1]));
  }
  return anchors;
}

describe('docs', () => {
  it('lists every setting src/config.ts reads in docs/configuration.md', () => {
    const config = read('src/config.ts');
    const settings = new Set([...config.matchAll(/\(env, '([A-Z][A-Z0-9_]+)'/g)].map((m) => m[1]));
    for (const m of config.matchAll(/env\.([A-Z][A-Z0-9_]+)/g)) settings.add(m[1]);
    expect(settings.size).toBeGreaterThan(40); // the pattern still finds them
    const page = read('docs/configuration.md');
    const missing = [...settings].filter((name) => !page.includes(`\`${name}\``));
    expect(missing).toEqual([]);
  });

  it('links only to pages and headings that exist', () => {
    const anchors = new Map(pages.map((page) => [page, anchorsOf(read(page))]));
    const broken: string[] = [];
    for (const page of pages) {
      for (const [, target] of read(page).matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/.test(target)) continue; // http:, https:, mailto:
        const [file, anchor] = target.split('#');
        const resolved = file ? path.normalize(path.join(path.dirname(page), file)) : page;
        if (!pages.includes(resolved)) {
          if (!file || !readdirSync(path.join(root, path.dirname(resolved))).includes(path.basename(resolved))) broken.push(`${page}: ${target}`);
          continue;
        }
        if (anchor && !anchors.get(resolved)!.has(anchor)) broken.push(`${page}: ${target}`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('keeps the README a front door', () => {
    expect(read('README.md').split('\n').length).toBeLessThanOrEqual(250);
  });
});
