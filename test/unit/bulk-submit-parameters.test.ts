/** `$bulk-submit`'s Parameters read strictly, the submitters' URL allow list, and the status manifest's outcome files and pages. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { outcomeFile, statusManifest } from '../../src/bulk-submit/status-manifest';
import { parseSubmitParameters } from '../../src/bulk-submit/submit-parameters';
import { isAllowed, loadSubmitters } from '../../src/bulk-submit/submitters';
import type { SubmittedManifestStatus } from '../../src/contracts/bulk-submit';
import { OperationOutcomeError } from '../../src/fhir/outcome-error';

const submitter = { name: 'submitter', valueIdentifier: { system: 'https://p.example/ids', value: 'p' } };
const body = (...parameter: object[]) => ({ resourceType: 'Parameters', parameter: [submitter, { name: 'submissionId', valueString: 's1' }, ...parameter] });
const manifestUrl = { name: 'manifestUrl', valueUrl: 'https://p.example/fhir/bulkstatus/1' };
const base = { name: 'fhirBaseUrl', valueUrl: 'https://p.example/fhir' };
const part = (name: string, parts: Array<[string, object]>) => ({ name, part: parts.map(([n, v]) => ({ name: n, ...v })) });

function refusal(fn: () => unknown): { status: number; expression?: string[]; diagnostics?: string } {
  try {
    fn();
  } catch (err) {
    if (err instanceof OperationOutcomeError) return { status: err.status, expression: err.issues[0].expression, diagnostics: err.issues[0].diagnostics };
    throw err;
  }
  throw new Error('expected a refusal');
}

describe('$bulk-submit parameters', () => {
  it('reads every parameter, and the spellings of earlier drafts', () => {
    const request = parseSubmitParameters(
      body(
        { name: 'submissionStatus', valueCoding: { code: 'complete' } },
        manifestUrl,
        { name: 'FHIRBaseUrl', valueString: 'https://p.example/fhir' },
        { name: 'replacesManifestUrl', valueUrl: 'https://p.example/fhir/bulkstatus/0' },
        { name: 'outputFormat', valueString: 'application/fhir+ndjson' },
        part('fileRequestHeader', [['headerName', { valueString: 'X-Api-Key' }], ['headerValue', { valueString: 'k1' }]]),
        { name: 'oauthMetadataUrl', valueUrl: 'https://p.example/fhir/.well-known/smart-configuration' },
        part('metadata', [['parameterUrl', { valueUri: 'urn:example:batch' }], ['parameterValue', { valueString: '7' }]]),
        part('import', [['parameterUrl', { valueUri: 'urn:bulkflow:import:mode' }], ['parameterValue', { valueCode: 'merge' }]]),
      ),
    );
    expect(request).toEqual({
      submitter: { system: 'https://p.example/ids', value: 'p' },
      submissionId: 's1',
      closeWith: 'completed',
      manifest: {
        source: 'manifest',
        url: 'https://p.example/fhir/bulkstatus/1',
        fhirBaseUrl: 'https://p.example/fhir',
        replacesManifestUrl: 'https://p.example/fhir/bulkstatus/0',
        fileRequestHeaders: [['X-Api-Key', 'k1']],
        oauthMetadataUrl: 'https://p.example/fhir/.well-known/smart-configuration',
        mode: 'merge',
        metadata: [['urn:example:batch', '7']],
      },
    });
    expect(parseSubmitParameters(body({ name: 'submissionStatus', valueCoding: { code: 'aborted' } })).closeWith).toBe('stopped');
  });

  it.each([
    ['an unknown parameter', [manifestUrl, base, { name: 'callback', valueUrl: 'https://x' }], 400, 'callback'],
    ['fileEncryptionKey (no JWE)', [manifestUrl, base, part('fileEncryptionKey', [['value', { valueString: 'k' }]])], 400, 'fileEncryptionKey'],
    ['a Range header', [manifestUrl, base, part('fileRequestHeader', [['headerName', { valueString: 'Range' }], ['headerValue', { valueString: 'bytes=0-' }]])], 400, 'fileRequestHeader'],
    ['a header value with a line break', [manifestUrl, base, part('fileRequestHeader', [['headerName', { valueString: 'X-A' }], ['headerValue', { valueString: 'a\r\nHost: evil' }]])], 400, 'fileRequestHeader'],
    ['a manifest URL that is not http(s)', [{ name: 'manifestUrl', valueUrl: 'file:///etc/passwd' }, base], 400, 'manifestUrl'],
    ['a manifest without the provider base', [manifestUrl], 400, 'fhirBaseUrl'],
    ['two oauthMetadataUrl', [manifestUrl, base, { name: 'oauthMetadataUrl', valueUrl: 'https://a' }, { name: 'oauthMetadataUrl', valueUrl: 'https://b' }], 400, 'oauthMetadataUrl'],
    ['a manifest that replaces itself', [manifestUrl, base, { name: 'replacesManifestUrl', valueUrl: manifestUrl.valueUrl }], 400, 'replacesManifestUrl'],
    ['replacesManifestUrl without a manifest', [{ name: 'replacesManifestUrl', valueUrl: 'https://p.example/m' }, { name: 'submissionStatus', valueCode: 'completed' }], 400, 'replacesManifestUrl'],
    ['an import option bulkflow does not know', [manifestUrl, base, part('import', [['parameterUrl', { valueUri: 'urn:x' }], ['parameterValue', { valueString: 'y' }]])], 400, 'import'],
    ['another output format', [manifestUrl, base, { name: 'outputFormat', valueString: 'text/csv' }], 400, 'outputFormat'],
  ])('refuses %s, naming the parameter', (_name, parameters, status, parameter) => {
    expect(refusal(() => parseSubmitParameters(body(...parameters)))).toMatchObject({ status, expression: [parameter] });
  });
});

describe('submitters', () => {
  const allowed = { allowedUrls: ['https://p.example/fhir/'] };

  it.each([
    ['https://p.example/fhir/bulkfiles/a.ndjson', true],
    ['https://p.example/fhir/', true],
    ['https://p.example/fhir', true],
    ['https://p.example.evil/fhir/a', false], // the host ends where the prefix says
    ['https://p.example/fhirx/a', false],
    ['https://p.example/fhir/../admin', false], // normalised before the check
    ['https://p.example/fhir/%2e%2e/admin', false],
    ['https://user@p.example/fhir/a', false],
    ['http://p.example/fhir/a', false],
    ['not a url', false],
  ])('%s allowed under https://p.example/fhir/: %s', (url, expected) => {
    expect(isAllowed(allowed, url)).toBe(expected);
  });

  it('refuses a file whose prefixes could match more than they say, naming the entry', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'submitters-'));
    const write = (entry: object) => {
      const file = path.join(dir, 'submitters.json');
      writeFileSync(file, JSON.stringify({ submitters: [{ tenant: 't', system: 's', value: 'v', ...entry }] }));
      return file;
    };
    expect(() => loadSubmitters(write({ allowedUrls: ['ftp://p.example/'] }))).toThrow(/only http\(s\) URLs/);
    expect(() => loadSubmitters(write({ allowedUrls: ['https://p.example/fhir?x=1'] }))).toThrow(/prefix of scheme, host and path only/);
    expect(() => loadSubmitters(write({ allowedUrls: [] }))).toThrow(/submitters\[0\]\.allowedUrls/);
    expect(loadSubmitters(write({ allowedUrls: ['https://p.example/fhir'] }))[0].allowedUrls).toEqual(['https://p.example/fhir/']);
  });
});

describe('status manifest', () => {
  const manifest: SubmittedManifestStatus = {
    url: 'https://p.example/m1',
    source: 'manifest',
    mode: 'replace',
    metadata: [],
    state: 'done',
    files: [
      { type: 'Patient', url: 'https://p.example/f1', state: 'done', load: { bytes: 10, lines: 3, written: 2, unchanged: 0, kept: 0, errors: 1 } },
      { type: 'Observation', url: 'https://p.example/f2', state: 'failed', failure: 'answered 410' },
    ],
  };

  it('counts the outcome file\'s lines by severity: bulkflow\'s own lines and each refused line', () => {
    const refused = JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'invalid', diagnostics: 'line 2 is not JSON' }] });
    const file = outcomeFile(manifest, 'https://r.example/o/1', [`${refused}\n`]);
    const lines = file.text.trim().split('\n').map((l) => JSON.parse(l) as { issue: Array<{ severity: string; diagnostics: string }> });
    expect(lines.map((l) => l.issue[0].severity)).toEqual(['information', 'information', 'error', 'error']);
    expect(lines[0].issue[0].diagnostics).toContain('2 resources written');
    expect(lines[2].issue[0].diagnostics).toContain('answered 410');
    expect(file.countSeverity).toEqual([{ code: 'information', count: 2 }, { code: 'error', count: 2 }]);
  });

  it('pages the outcome items with a next link until the last page', () => {
    const outcomes = [1, 2, 3].map((n) => outcomeFile({ ...manifest, url: `https://p.example/m${n}` }, `https://r.example/o/${n}`, []));
    const status = { submissionId: 's1', phase: 'completed' as const, startedAt: '2026-01-01T00:00:00.000Z', completedAt: '2026-01-01T00:01:00.000Z', manifests: [] };
    const first = statusManifest(status, outcomes, 1, 2, (n) => `https://r.example/s?page=${n}`);
    expect((first.outcome as Array<{ manifestUrl: string }>).map((o) => o.manifestUrl)).toEqual(['https://p.example/m1', 'https://p.example/m2']);
    expect(first.link).toEqual([{ relation: 'next', url: 'https://r.example/s?page=2' }]);
    const last = statusManifest(status, outcomes, 2, 2, (n) => `https://r.example/s?page=${n}`);
    expect((last.outcome as Array<{ manifestUrl: string; fileSize: number }>).map((o) => [o.manifestUrl, o.fileSize])).toEqual([['https://p.example/m3', Buffer.byteLength(outcomes[2].text)]]);
    expect(last.link).toBeUndefined();
  });
});
