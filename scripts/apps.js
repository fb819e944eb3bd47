// Prints the apps of this monorepo, one per line: the `application` projects of nest-cli.json, the one list that
// scripts/lib.sh, the Dockerfile and test/compose.spec.ts read.
const { projects } = require('../nest-cli.json');

const apps = Object.entries(projects)
  .filter(([, project]) => project.type === 'application')
  .map(([name]) => name);

if (require.main === module) process.stdout.write(`${apps.join('\n')}\n`);
module.exports = { apps };
