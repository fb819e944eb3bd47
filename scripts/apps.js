// Prints the apps of this monorepo, one per line: the `application` projects of nest-cli.json, the one list that
// scripts/lib.sh, the Dockerfile and test/compose.spec.ts read. With --ports, each line is "<app> <default port>".
const { projects } = require('../nest-cli.json');

const apps = Object.entries(projects)
  .filter(([, project]) => project.type === 'application')
  .map(([name]) => name);

// The default HTTP ports of libs/config (APP_PORTS), for the shell; libs/config/src/apps.spec.ts keeps them equal.
const ports = {
  'users-api': 3000,
  'email-service': 3001,
  'video-processor': 3002,
  'cache-invalidator': 3003,
  notifier: 3004,
  console: 3005,
};

if (require.main === module) {
  const withPorts = process.argv.includes('--ports');
  process.stdout.write(`${apps.map((app) => (withPorts ? `${app} ${ports[app]}` : app)).join('\n')}\n`);
}
module.exports = { apps, ports };
