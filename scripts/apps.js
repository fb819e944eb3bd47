// Prints the apps of this monorepo, one per line, from scripts/apps.json (written by `npm run apps:sync` from the app
// registry, apps/registry.ts): the list scripts/lib.sh, scripts/start.sh and the Dockerfile read. With --ports, each
// line is "<app> <default port>".
const list = require('./apps.json');

const apps = list.map((app) => app.name);
const ports = Object.fromEntries(list.map((app) => [app.name, app.port]));

if (require.main === module) {
  const withPorts = process.argv.includes('--ports');
  process.stdout.write(`${apps.map((app) => (withPorts ? `${app} ${ports[app]}` : app)).join('\n')}\n`);
}
module.exports = { apps, ports };
