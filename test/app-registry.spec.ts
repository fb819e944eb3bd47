import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { APP_CONFIG_SCHEMAS, APP_PORTS } from '@app/config';
import { APPS } from '../apps/registry';

/**
 * apps/registry.ts is the list of apps. Every other place that must name each app is checked against it here, so an
 * app added there and forgotten anywhere else (or the reverse) fails this spec, naming the place.
 */
describe('the app registry', () => {
  const root = join(__dirname, '..');
  const names = APPS.map((app) => app.name).sort();
  const read = (path: string) => readFileSync(join(root, path), 'utf8');

  it('lists each app once', () => {
    expect(new Set(names).size).toBe(APPS.length);
  });

  it('nest-cli.json has a project for each app, built from its own folder', () => {
    const { projects } = JSON.parse(read('nest-cli.json')) as {
      projects: Record<string, { type: string; root: string; compilerOptions: { tsConfigPath: string } }>;
    };
    const applications = Object.entries(projects).filter(([, p]) => p.type === 'application');
    expect(applications.map(([name]) => name).sort()).toEqual(names);
    for (const [name, project] of applications) {
      expect(project.root).toBe(`apps/${name}`);
      expect(project.compilerOptions.tsConfigPath).toBe(`apps/${name}/tsconfig.app.json`);
    }
  });

  it('scripts/apps.js (the shell scripts and the Dockerfile) knows each app and its port', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- the CommonJS helper the shell and Docker read
    const { apps, ports } = require('../scripts/apps.js') as { apps: string[]; ports: Record<string, number> };
    expect([...apps].sort()).toEqual(names);
    expect(ports).toEqual(APP_PORTS);
  });

  it("libs/config holds each app's schema, the one its definition boots with, and its port", () => {
    expect(Object.keys(APP_CONFIG_SCHEMAS).sort()).toEqual(names);
    expect(Object.keys(APP_PORTS).sort()).toEqual(names);
    for (const app of APPS) {
      expect(app.schema).toBe(APP_CONFIG_SCHEMAS[app.name as keyof typeof APP_CONFIG_SCHEMAS]);
    }
  });

  it('the whole-system test harness starts each app', () => {
    const started = [...read('test/support/system.ts').matchAll(/new ChildApp\('([a-z-]+)'/g)].map((m) => m[1]);
    expect(started.sort()).toEqual(names);
  });

  it('compose runs each app, and Kubernetes has a manifest for each', () => {
    const compose = parse(read('docker-compose.yml')) as { services: Record<string, unknown> };
    for (const name of names) expect(Object.keys(compose.services)).toContain(name);
    const kustomization = parse(read('deploy/k8s/base/kustomization.yaml')) as { resources: string[] };
    for (const name of names) expect(kustomization.resources).toContain(`${name}.yaml`);
  });
});
