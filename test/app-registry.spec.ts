import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { APP_CONFIG_SCHEMAS, APP_PORTS } from '@app/config';
import { APPS } from '../apps/registry';
import { registryFiles, staleRegistryFiles } from '../scripts/apps-sync';
import { SYSTEM_APPS } from './support/system';

/**
 * apps/registry.ts is the list of apps. The files that only repeat it are generated from it (`npm run apps:sync`)
 * and must be current; the files an app needs that cannot be generated (its entry point, its config, its compose
 * service and Kubernetes manifest) must exist for each app. A step of docs/extending.md forgotten fails here.
 */
describe('the app registry', () => {
  const root = join(__dirname, '..');
  const names = APPS.map((app) => app.name).sort();
  const read = (path: string) => readFileSync(join(root, path), 'utf8');

  it('lists each app once', () => {
    expect(new Set(names).size).toBe(APPS.length);
  });

  it('the files generated from it are current (else run `npm run apps:sync`)', async () => {
    expect(await staleRegistryFiles()).toEqual([]);
  });

  it('generates a nest-cli project, a tsconfig, a port and a Kubernetes resource for each app', async () => {
    const files = Object.fromEntries((await registryFiles()).map(({ path, content }) => [path, content]));
    const { projects } = JSON.parse(files['nest-cli.json']) as {
      projects: Record<string, { type: string; root: string }>;
    };
    const applications = Object.entries(projects).filter(([, p]) => p.type === 'application');
    expect(applications.map(([name]) => name).sort()).toEqual(names);
    for (const [name, project] of applications) expect(project.root).toBe(`apps/${name}`);
    expect(JSON.parse(files['scripts/apps.json'])).toEqual(
      APPS.map((app) => ({ name: app.name, port: APP_PORTS[app.name as keyof typeof APP_PORTS] })),
    );
    const { resources } = parse(files['deploy/k8s/base/kustomization.yaml']) as { resources: string[] };
    for (const name of names) {
      expect(resources).toContain(`${name}.yaml`);
      expect(files[`apps/${name}/tsconfig.app.json`]).toContain(`dist/apps/${name}`);
    }
  });

  it("libs/config holds each app's schema, the one its definition boots with, and its port", () => {
    expect(Object.keys(APP_CONFIG_SCHEMAS).sort()).toEqual(names);
    expect(Object.keys(APP_PORTS).sort()).toEqual(names);
    for (const app of APPS) {
      expect(app.schema).toBe(APP_CONFIG_SCHEMAS[app.name as keyof typeof APP_CONFIG_SCHEMAS]);
    }
  });

  it('each app has an entry point that runs its definition', () => {
    for (const name of names) {
      const main = join(root, 'apps', name, 'src', 'main.ts');
      expect(existsSync(main) ? read(`apps/${name}/src/main.ts`) : `apps/${name}/src/main.ts missing`).toMatch(
        /runApp\(\w+\);/,
      );
    }
  });

  it('the whole-system test harness starts each app', () => {
    expect([...SYSTEM_APPS].sort()).toEqual(names);
  });

  it('compose runs each app, and Kubernetes has a manifest for each', () => {
    const compose = parse(read('docker-compose.yml')) as { services: Record<string, unknown> };
    for (const name of names) {
      expect(Object.keys(compose.services)).toContain(name);
      expect(existsSync(join(root, 'deploy/k8s/base', `${name}.yaml`)) ? name : `deploy/k8s/base/${name}.yaml`).toBe(
        name,
      );
    }
  });
});
