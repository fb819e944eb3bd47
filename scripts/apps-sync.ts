/**
 * Writes the files that only repeat the app registry (apps/registry.ts, with each app's port from libs/config):
 * nest-cli.json, each app's tsconfig.app.json, scripts/apps.json (the shell scripts' and the Dockerfile's list of apps
 * and ports) and the resources of deploy/k8s/base/kustomization.yaml. `npm run apps:sync` rewrites them;
 * test/app-registry.spec.ts fails while one of them is stale.
 */
import 'reflect-metadata';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { format, resolveConfig } from 'prettier';
import { APP_PORTS } from '@app/config';
import { APPS } from '../apps/registry';

const ROOT = join(__dirname, '..');

/** Kubernetes resources that are not an app's Deployment. */
const K8S_SHARED = ['kafka-config.yaml', 'media.yaml'];

const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;

function portOf(name: string): number {
  const port = (APP_PORTS as Record<string, number>)[name];
  if (port === undefined) throw new Error(`${name} has no default port in APP_PORTS (libs/config/src/apps.ts)`);
  return port;
}

function nestCli(): string {
  const [first] = APPS;
  const projects: Record<string, unknown> = {};
  for (const app of APPS) {
    const tsConfigPath = `apps/${app.name}/tsconfig.app.json`;
    const assets = (app.assets ?? []).map((include) => ({
      include,
      outDir: `dist/apps/${app.name}`,
      watchAssets: true,
    }));
    projects[app.name] = {
      type: 'application',
      root: `apps/${app.name}`,
      entryFile: 'main',
      sourceRoot: `apps/${app.name}/src`,
      compilerOptions: assets.length > 0 ? { tsConfigPath, assets } : { tsConfigPath },
    };
  }
  // Every folder of libs/ is a library.
  for (const lib of readdirSync(join(ROOT, 'libs')).sort()) {
    projects[lib] = { type: 'library', root: `libs/${lib}`, entryFile: 'index', sourceRoot: `libs/${lib}/src` };
  }
  return json({
    $schema: 'https://json.schemastore.org/nest-cli',
    collection: '@nestjs/schematics',
    sourceRoot: `apps/${first.name}/src`,
    monorepo: true,
    root: `apps/${first.name}`,
    compilerOptions: {
      webpack: false,
      builder: 'tsc',
      tsConfigPath: `apps/${first.name}/tsconfig.app.json`,
      deleteOutDir: false,
    },
    projects,
  });
}

function tsconfigApp(name: string): string {
  return json({
    extends: '../../tsconfig.build.json',
    compilerOptions: { outDir: `../../dist/apps/${name}` },
    include: ['src/**/*.ts', '../../libs/**/*.ts'],
    exclude: ['node_modules', 'dist', 'test', '**/*.spec.ts', '../../libs/**/*.spec.ts'],
  });
}

function appsJson(): string {
  return json(APPS.map((app) => ({ name: app.name, port: portOf(app.name) })));
}

/** kustomization.yaml with its resources listed again: the shared ones, then one manifest per app. */
function kustomization(current: string): string {
  const resources = [...K8S_SHARED, ...APPS.map((app) => `${app.name}.yaml`)].map((r) => `  - ${r}`).join('\n');
  const replaced = current.replace(/^resources:\n(?: {2}- .*\n)*/m, `resources:\n${resources}\n`);
  if (replaced === current && !current.includes(`resources:\n${resources}\n`)) {
    throw new Error('deploy/k8s/base/kustomization.yaml has no `resources:` list to rewrite');
  }
  return replaced;
}

/** Each generated file: its path from the repository root and what it should hold, as `npm run format` leaves it. */
export async function registryFiles(): Promise<{ path: string; content: string }[]> {
  const kustomizationPath = 'deploy/k8s/base/kustomization.yaml';
  const files = [
    { path: 'nest-cli.json', content: nestCli() },
    { path: 'scripts/apps.json', content: appsJson() },
    { path: kustomizationPath, content: kustomization(readFileSync(join(ROOT, kustomizationPath), 'utf8')) },
    ...APPS.map((app) => ({ path: `apps/${app.name}/tsconfig.app.json`, content: tsconfigApp(app.name) })),
  ];
  return Promise.all(
    files.map(async ({ path, content }) => {
      const filepath = join(ROOT, path);
      return { path, content: await format(content, { ...(await resolveConfig(filepath)), filepath }) };
    }),
  );
}

/** The generated files whose content differs from what the registry says, or that are missing. */
export async function staleRegistryFiles(): Promise<string[]> {
  return (await registryFiles())
    .filter(({ path, content }) => !existsSync(join(ROOT, path)) || readFileSync(join(ROOT, path), 'utf8') !== content)
    .map(({ path }) => path);
}

async function main(): Promise<void> {
  for (const { path, content } of await registryFiles()) {
    const full = join(ROOT, path);
    if (existsSync(full) && readFileSync(full, 'utf8') === content) continue;
    writeFileSync(full, content);
    process.stdout.write(`wrote ${path}\n`);
  }
}

if (require.main === module) void main();
