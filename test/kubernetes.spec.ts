import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { APP_CONFIG_SCHEMAS, APP_PORTS, loadConfig } from '@app/config';
import { newSigningKeySet } from './support/signing-keys';

/**
 * No cluster runs where the tests run: the manifests are rendered with `kubectl kustomize` (scripts/test.sh installs
 * kubectl when missing), validated against the Kubernetes and KEDA schemas, and checked against the apps' own
 * registry and config schemas.
 */
interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  [key: string]: unknown;
}

const root = join(__dirname, '..');
const apps = Object.keys(APP_CONFIG_SCHEMAS) as (keyof typeof APP_CONFIG_SCHEMAS)[];
/** Which topic each lag-scaled app consumes, and the config variable naming its group. */
const scaled: Partial<Record<keyof typeof APP_CONFIG_SCHEMAS, { topic: string; groupVariable: string }>> = {
  'email-service': { topic: 'emails', groupVariable: 'EMAIL_CONSUMER_GROUP' },
  'video-processor': { topic: 'video-processing', groupVariable: 'VIDEO_CONSUMER_GROUP' },
  'cache-invalidator': { topic: 'posts', groupVariable: 'CACHE_INVALIDATOR_GROUP' },
};

function render(dir: string): Manifest[] {
  const text = execFileSync('kubectl', ['kustomize', join(root, dir)], { encoding: 'utf8', stdio: 'pipe' });
  return parseAllDocuments(text).map((doc) => doc.toJS() as Manifest);
}

/** Problems the Kubernetes and KEDA schemas find in these documents (test/support/k8s-validate.mjs). */
function schemaProblems(manifests: Manifest[]): string[] {
  const output = execFileSync(process.execPath, [join(__dirname, 'support', 'k8s-validate.mjs')], {
    input: JSON.stringify(manifests),
    encoding: 'utf8',
  });
  return JSON.parse(output) as string[];
}

interface Container {
  name: string;
  image: string;
  command: string[];
  ports: { name: string; containerPort: number }[];
  envFrom?: { configMapRef?: { name: string } }[];
  env?: { name: string; value?: string; valueFrom?: unknown }[];
  readinessProbe: { httpGet: { path: string; port: string } };
  livenessProbe: { httpGet: { path: string; port: string } };
  lifecycle?: { preStop?: { exec?: { command: string[] } } };
  resources: { requests?: Record<string, string>; limits?: Record<string, string> };
}

describe.each(['deploy/k8s/base', 'deploy/k8s/overlays/production'])('Kubernetes manifests: %s', (dir) => {
  const manifests = render(dir);
  const of = <T>(kind: string, name: string) =>
    manifests.find((m) => m.kind === kind && m.metadata.name === name) as unknown as T | undefined;
  const configMap = of<{ data: Record<string, string> }>('ConfigMap', 'kafka-nest-kafka')!;
  const deployments = manifests.filter((m) => m.kind === 'Deployment');

  it('every document is valid against the Kubernetes (and KEDA) schemas', () => {
    expect(schemaProblems(manifests)).toEqual([]);
    // And the check can fail: a Deployment without its selector is refused.
    const broken = structuredClone(deployments[0]) as Manifest & { spec: { selector?: unknown } };
    delete broken.spec.selector;
    expect(schemaProblems([broken])).toEqual([expect.stringContaining('selector')]);
  });

  it('has one Deployment per app of the registry, and nothing else', () => {
    expect(deployments.map((d) => d.metadata.name).sort()).toEqual([...apps].sort());
  });

  it('the console watches every app by its Service, and alone holds the console credentials', () => {
    const containerOf = (app: string) =>
      of<{ spec: { template: { spec: { containers: Container[] } } } }>('Deployment', app)!.spec.template.spec
        .containers[0];
    const env = Object.fromEntries(
      (containerOf('console').env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]),
    );
    const config = loadConfig('console', APP_CONFIG_SCHEMAS.console, env);
    expect(config.CONSOLE_APPS.map((entry) => entry.name).sort()).toEqual([...apps].sort());
    for (const { name, url } of config.CONSOLE_APPS) {
      const host = new URL(url).hostname;
      expect(name === 'console' ? host === '127.0.0.1' : of('Service', host) !== undefined).toBe(true);
      expect(Number(new URL(url).port)).toBe(APP_PORTS[name as keyof typeof APP_PORTS]);
    }
    const secretsOf = (app: string) =>
      (containerOf(app).env ?? []).flatMap((e) => {
        const ref = (e.valueFrom as { secretKeyRef?: { name: string; key: string } } | undefined)?.secretKeyRef;
        return ref ? [`${ref.name}/${ref.key}`] : [];
      });
    // Its Kafka principal is its own; no other app reads its credentials.
    expect(secretsOf('console')).toContain('kafka-nest-console-kafka/KAFKA_SASL_PASSWORD');
    for (const app of apps.filter((name) => name !== 'console')) {
      expect(secretsOf(app).filter((ref) => ref.startsWith('kafka-nest-console-kafka/'))).toEqual([]);
    }
    // The page's origin is the one users-api lets call it from a browser.
    const api = Object.fromEntries(
      (containerOf('users-api').env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]),
    );
    expect(api.USERS_API_ALLOWED_ORIGINS).toBeDefined();
    if (config.CONSOLE_API_URL.startsWith('https:')) {
      expect(api.USERS_API_ALLOWED_ORIGINS).toMatch(/^https:/);
    }
  });

  describe.each(apps)('%s', (app) => {
    const deployment = of<{
      spec: {
        selector: { matchLabels: Record<string, string> };
        template: { spec: { terminationGracePeriodSeconds: number; containers: Container[] } };
      };
    }>('Deployment', app)!;
    const pod = deployment.spec.template.spec;
    const container = pod.containers[0];
    /** The environment the container gets: the ConfigMap, its own values, and placeholders for secret refs. */
    const environment = (): Record<string, string> => {
      const env: Record<string, string> = {};
      for (const source of container.envFrom ?? []) {
        expect(source.configMapRef?.name).toBe('kafka-nest-kafka');
        Object.assign(env, configMap.data);
      }
      for (const entry of container.env ?? []) {
        const placeholder: Record<string, () => string> = {
          DATABASE_URL: () => 'postgres://db/kafka_nest',
          AUTH_SIGNING_KEYS: () => newSigningKeySet(),
        };
        env[entry.name] =
          entry.value ?? (placeholder[entry.name] ?? (() => 'a-value-from-a-secret-long-enough-for-any'))();
      }
      // As the image runs them; users-api then needs its signing keys from the Secret.
      if (app === 'users-api') env.NODE_ENV = 'production';
      // The CA is a mounted secret in the cluster; here any readable file stands in for it.
      if (env.KAFKA_SSL_CA_FILE) env.KAFKA_SSL_CA_FILE = __filename;
      return env;
    };

    it('runs its own entry point from the one image, on the port its config listens on', () => {
      expect(container.command.slice(-2)).toEqual(['node', `dist/apps/${app}/apps/${app}/src/main.js`]);
      expect(container.image).toMatch(/(^|\/)kafka-nest(:|$)/);
      const config = loadConfig(app, APP_CONFIG_SCHEMAS[app], environment());
      expect(container.ports).toEqual([{ name: 'http', containerPort: APP_PORTS[app] }]);
      expect(config.PORT).toBe(APP_PORTS[app]);
      expect(config.HOST).toBe('0.0.0.0');
    });

    it('sets only variables its config schema knows, with values it accepts', () => {
      const env = environment();
      const known = Object.keys(APP_CONFIG_SCHEMAS[app].shape);
      expect(Object.keys(env).filter((name) => !known.includes(name))).toEqual([]);
      expect(() => loadConfig(app, APP_CONFIG_SCHEMAS[app], env)).not.toThrow();
      // Secrets come from Secrets only.
      for (const secret of [
        'KAFKA_SASL_PASSWORD',
        'DATABASE_URL',
        'SMTP_PASSWORD',
        'AUTH_SIGNING_KEYS',
        'NOTIFIER_STREAM_SECRET',
      ]) {
        expect(configMap.data[secret]).toBeUndefined();
        const entry = container.env?.find((e) => e.name === secret);
        if (entry) expect(entry).toMatchObject({ valueFrom: { secretKeyRef: { key: secret } } });
      }
    });

    it('is probed on its health endpoints, has resources, and drains within its grace period', () => {
      expect(container.readinessProbe.httpGet).toEqual({ path: '/health/ready', port: 'http' });
      expect(container.livenessProbe.httpGet).toEqual({ path: '/health/live', port: 'http' });
      for (const kind of ['requests', 'limits'] as const) {
        expect(Object.keys(container.resources[kind] ?? {}).sort()).toEqual(['cpu', 'memory']);
      }
      const preStop = container.lifecycle?.preStop?.exec?.command ?? [];
      const preStopSeconds = preStop[0] === 'sleep' ? Number(preStop[1]) : 0;
      const { SHUTDOWN_TIMEOUT_MS } = loadConfig(app, APP_CONFIG_SCHEMAS[app], environment());
      expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(preStopSeconds * 1000 + SHUTDOWN_TIMEOUT_MS);
    });

    it('has a Service on its port and a PodDisruptionBudget over its pods', () => {
      const service = of<{ spec: { selector: Record<string, string>; ports: { port: number }[] } }>('Service', app)!;
      expect(service.spec.selector).toEqual(deployment.spec.selector.matchLabels);
      expect(service.spec.ports.map((p) => p.port)).toEqual([APP_PORTS[app]]);
      const budget = of<{ spec: { selector: { matchLabels: Record<string, string> } } }>('PodDisruptionBudget', app)!;
      expect(budget.spec.selector.matchLabels).toEqual(deployment.spec.selector.matchLabels);
    });

    it(scaled[app] ? 'scales on its group lag, at most one replica per partition' : 'is not scaled on lag', () => {
      const scaledObject = of<{
        spec: {
          scaleTargetRef: { name: string };
          maxReplicaCount: number;
          triggers: { type: string; metadata: Record<string, string>; authenticationRef?: { name: string } }[];
        };
      }>('ScaledObject', app);
      const expected = scaled[app];
      if (!expected) {
        expect(scaledObject).toBeUndefined();
        return;
      }
      const config = loadConfig(app, APP_CONFIG_SCHEMAS[app], environment()) as Record<string, unknown>;
      expect(scaledObject!.spec.scaleTargetRef.name).toBe(app);
      expect(scaledObject!.spec.maxReplicaCount).toBeLessThanOrEqual(config.KAFKA_TOPIC_PARTITIONS as number);
      const [trigger] = scaledObject!.spec.triggers;
      expect(trigger.type).toBe('kafka');
      expect(trigger.metadata).toMatchObject({
        topic: expected.topic,
        consumerGroup: config[expected.groupVariable],
        bootstrapServers: (config.KAFKA_BROKERS as string[]).join(','),
      });
      // Where the brokers want SASL, the scaler authenticates like the apps do.
      if (config.KAFKA_SASL_MECHANISM) {
        const auth = of<{ spec: { secretTargetRef: { parameter: string }[] } }>(
          'TriggerAuthentication',
          trigger.authenticationRef!.name,
        )!;
        expect(auth.spec.secretTargetRef.map((ref) => ref.parameter).sort()).toEqual(
          ['ca', 'password', 'sasl', 'tls', 'username'].sort(),
        );
      }
    });
  });
});
