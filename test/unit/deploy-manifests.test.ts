/**
 * deploy/ checked offline (no Docker, no cluster here): each Kubernetes overlay renders with
 * kustomize; every variable the manifests and the Compose file give bulkflow is one that
 * loadConfig reads, and loadConfig accepts what they give; what a deployment cannot default is
 * set; images, commands, ports and probes agree with package.json, the CLI and the settings.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { loadConfig } from '../../src/config';

const root = path.resolve(__dirname, '..', '..');
const kustomize = path.join(root, '.tools', 'bin', 'kustomize');
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string; bin: { bulkflow: string }; engines: { node: string } };
const COMMANDS = ['serve', 'worker', 'migrate'];
/** What a cluster deployment must say itself: the defaults are for one machine. */
const REQUIRED = ['DATABASE_URL', 'TEMPORAL_ADDRESS', 'BASE_URL'];

interface Container {
  name: string;
  image: string;
  args?: string[];
  env?: Array<{ name: string; value?: string }>;
  envFrom?: Array<{ configMapRef?: { name: string }; secretRef?: { name: string } }>;
  ports?: Array<{ name: string; containerPort: number }>;
  livenessProbe?: { httpGet: { path: string; port: string } };
  readinessProbe?: { httpGet: { path: string; port: string } };
}
interface Manifest {
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  data?: Record<string, string>;
  stringData?: Record<string, string>;
  spec?: {
    template?: { metadata?: { labels?: Record<string, string> }; spec: { containers: Container[] } };
    selector?: { matchExpressions?: Array<{ values: string[] }> };
    ports?: Array<{ name: string }>;
    endpoints?: Array<{ port: string }>;
  };
}

/** Loads the settings through a proxy that records every variable loadConfig reads. */
function loadRecording(env: Record<string, string>): { read: Set<string>; config: ReturnType<typeof loadConfig> } {
  const read = new Set<string>();
  const recording = new Proxy(env, {
    get(target, key) {
      if (typeof key === 'string') read.add(key);
      return target[key as string];
    },
  });
  return { read, config: loadConfig(recording) };
}

/** A bulkflow container's environment gives only variables loadConfig reads, which it accepts, and the ones a deployment needs. */
function expectUsableEnvironment(where: string, env: Record<string, string>): void {
  const { read } = loadRecording(env);
  expect([where, Object.keys(env).filter((name) => !read.has(name))]).toEqual([where, []]);
  expect([where, REQUIRED.filter((name) => !env[name])]).toEqual([where, []]);
}

describe.each(['temporal-cloud-gcs', 'self-hosted-temporal', 'eks-s3', 'aks-azure'])('the Kubernetes overlay %s', (overlay) => {
  const rendered = execFileSync(kustomize, ['build', path.join(root, 'deploy', 'k8s', 'overlays', overlay)], { encoding: 'utf8' });
  const manifests = parseAllDocuments(rendered).map((d) => d.toJS() as Manifest);
  const named = (kind: string) => manifests.filter((m) => m.kind === kind);
  const workloads = [...named('Deployment'), ...named('Job')];
  const environmentOf = (container: Container): Record<string, string> => {
    const env: Record<string, string> = {};
    for (const source of container.envFrom ?? []) {
      const ref = source.configMapRef ?? source.secretRef;
      const from = manifests.find((m) => m.kind === (source.configMapRef ? 'ConfigMap' : 'Secret') && m.metadata.name === ref!.name);
      expect(from).toBeDefined();
      Object.assign(env, from!.data, from!.stringData);
    }
    for (const e of container.env ?? []) env[e.name] = e.value ?? '';
    return env;
  };

  it('renders the API, the workers with an autoscaler, the migration, settings and a ServiceMonitor', () => {
    expect(named('Deployment').map((m) => m.metadata.name).sort()).toEqual(['bulkflow-api', 'bulkflow-worker']);
    expect(named('Job').map((m) => m.metadata.name)).toEqual(['bulkflow-migrate']);
    expect(named('HorizontalPodAutoscaler').map((m) => m.metadata.name)).toEqual(['bulkflow-worker']);
    for (const kind of ['Service', 'ConfigMap', 'Secret', 'ServiceMonitor']) expect(named(kind).length).toBeGreaterThan(0);
  });

  it('gives every bulkflow container settings loadConfig reads and accepts, the ones it cannot default included', () => {
    for (const workload of workloads) {
      for (const container of workload.spec!.template!.spec.containers) expectUsableEnvironment(`${workload.metadata.name}/${container.name}`, environmentOf(container));
    }
  });

  it('runs package.json\'s version of the image with a bulkflow command, on the ports the settings name, probed on the health endpoints', () => {
    for (const workload of workloads) {
      for (const container of workload.spec!.template!.spec.containers) {
        expect(container.image).toBe(`ghcr.io/bulkflow/bulkflow:${pkg.version}`);
        expect(COMMANDS).toContain(container.args![0]);
        if (workload.kind !== 'Deployment') continue;
        const config = loadConfig(environmentOf(container));
        const ports = Object.fromEntries((container.ports ?? []).map((p) => [p.name, p.containerPort]));
        expect(ports.metrics).toBe(config.metricsPort);
        if (container.args![0] === 'serve') expect(ports.http).toBe(config.port);
        expect(container.livenessProbe!.httpGet.path).toBe('/healthz');
        expect(container.readinessProbe!.httpGet.path).toBe('/readyz');
        // The API answers health on its own port; a worker on its metrics port.
        const probed = container.args![0] === 'serve' ? 'http' : 'metrics';
        expect([container.livenessProbe!.httpGet.port, container.readinessProbe!.httpGet.port]).toEqual([probed, probed]);
      }
    }
  });

  it('signs in to a cloud bucket with the pods\' own identity, never a key in the settings', () => {
    const settings = named('ConfigMap').find((m) => m.metadata.name === 'bulkflow-settings')!.data!;
    const secrets = Object.keys(named('Secret').flatMap((m) => Object.keys({ ...m.data, ...m.stringData })).reduce((all, k) => ({ ...all, [k]: true }), {}));
    expect(secrets.filter((name) => /^(AWS_|AZURE_STORAGE_CONNECTION)/.test(name))).toEqual([]);
    const [account] = named('ServiceAccount');
    if (settings.OUTPUT_BACKEND === 's3') expect(account.metadata.annotations?.['eks.amazonaws.com/role-arn']).toMatch(/^arn:aws:iam::\d{12}:role\//);
    if (settings.OUTPUT_BACKEND === 'azure') {
      expect(account.metadata.annotations?.['azure.workload.identity/client-id']).toMatch(/^[0-9a-f-]{36}$/);
      for (const workload of workloads) expect([workload.metadata.name, workload.spec!.template!.metadata?.labels?.['azure.workload.identity/use']]).toEqual([workload.metadata.name, 'true']);
    }
  });

  it('scrapes a metrics port of every Service the ServiceMonitor selects', () => {
    const [monitor] = named('ServiceMonitor');
    const selected = named('Service').filter((s) => monitor.spec!.selector!.matchExpressions![0].values.includes(s.metadata.labels?.['app.kubernetes.io/name'] ?? ''));
    expect(selected.map((s) => s.metadata.name).sort()).toEqual(['bulkflow-api', 'bulkflow-worker']);
    for (const service of selected) {
      for (const endpoint of monitor.spec!.endpoints!) expect(service.spec!.ports!.map((p) => p.name)).toContain(endpoint.port);
    }
  });
});

describe('docker-compose.yml and the Dockerfile', () => {
  const compose = parse(readFileSync(path.join(root, 'deploy', 'docker-compose.yml'), 'utf8'), { merge: true }) as {
    services: Record<string, { image?: string; command?: string[]; environment?: Record<string, string>; build?: { dockerfile: string } }>;
  };
  const bulkflow = Object.entries(compose.services).filter(([, s]) => s.image?.startsWith('bulkflow:'));
  const dockerfile = readFileSync(path.join(root, 'deploy', 'Dockerfile'), 'utf8');

  it('runs bulkflow commands of package.json\'s version with settings loadConfig reads and accepts', () => {
    expect(bulkflow.map(([name]) => name).sort()).toEqual(['api', 'migrate', 'worker']);
    for (const [name, service] of bulkflow) {
      expect(service.image).toBe(`bulkflow:${pkg.version}`);
      expect(service.build?.dockerfile).toBe('deploy/Dockerfile');
      expect(COMMANDS).toContain(service.command![0]);
      expectUsableEnvironment(name, service.environment!);
    }
  });

  it('builds a non-root image that starts package.json\'s bin on the pinned Node, one the engines field allows', () => {
    expect(dockerfile).toContain(`ENTRYPOINT ["node", "${pkg.bin.bulkflow}"]`);
    expect(dockerfile).toMatch(/^USER node$/m);
    const nodeMajors = [...dockerfile.matchAll(/^FROM node:(\d+)/gm)].map((m) => Number(m[1]));
    expect(nodeMajors.length).toBe(2); // multi-stage: build, then run
    // The image runs the pinned runtime (.node-version), a line the engines field lists.
    const pinnedMajor = Number(readFileSync(path.join(root, '.node-version'), 'utf8').trim().split('.')[0]);
    expect(nodeMajors).toEqual([pinnedMajor, pinnedMajor]);
    expect(pkg.engines.node.split('||').map((range: string) => range.trim())).toContain(`^${pinnedMajor}.0.0`);
  });

  it('caps glibc at two malloc arenas in the image that runs (the figure the worker memory budget was measured with)', () => {
    const runStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    expect(runStage).toMatch(/^ENV MALLOC_ARENA_MAX=2$/m);
  });
});
