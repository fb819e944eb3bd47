import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { logLevel } from 'kafkajs';
import { kafkaToolConfigSchema, loadConfigOrExit } from '@app/config';
import {
  DeadLetter,
  DeadLetterFilter,
  DeadLetters,
  formatThrough,
  lastOffsets,
  parseThrough,
  replayable,
} from './dead-letters';
import { errorMessageOf } from './errors';
import { deadLetterTopicOf } from './failure-headers';
import { createKafka } from './kafka.factory';
import { withDeadline } from './kafka-monitor';

const USAGE = `usage: npm run dlq -- <command> --group <consumer group> [filters] [options]

commands:
  list     one line per dead letter: partition/offset, event type and id, original position, reason, error
  show     every header and the value of the matching dead letters
  replay   republish the matching dead letters into the group's retry topic, due now (only this group runs them
           again; the inbox skips handled events; stubs, whose value was cut, stay listed)
  purge    delete dead letters up to what was seen (needs --yes; Kafka deletes up to an offset, per partition):
           --through <partition>/<offset>[,…] as an unfiltered list prints it; without it, what purge reads now
           (printed), so a dead letter that arrives meanwhile is never deleted unseen

filters:  --type <event type>  --id <event id>  --partition <n>  --offset <n>
options:  --json (list/show as JSON lines)  --yes (purge)  --through (purge)
          --force (replay: also letters that are no valid event; they only come back)
Kafka connection from the usual variables: KAFKA_BROKERS, KAFKA_SSL, KAFKA_SASL_*. Without KAFKA_BROKERS, the
broker npm start runs: 127.0.0.1 on KAFKA_PORT, or on the port scripts/kafka.sh remembers for it.`;

/** Without KAFKA_BROKERS: the broker `npm start` started (scripts/kafka.sh's `dev` instance), as npm start set it. */
function defaultBrokers(): void {
  if (process.env.KAFKA_BROKERS) return;
  let port = process.env.KAFKA_PORT;
  if (!port) {
    try {
      port = readFileSync(join(process.cwd(), '.run', 'kafka-dev', 'port'), 'utf8').trim();
    } catch {
      port = '9092';
    }
  }
  process.env.KAFKA_BROKERS = `127.0.0.1:${port}`;
}

/**
 * The broker answers, and the group is one it knows (or whose dead-letter topic exists): one line and exit 2
 * otherwise, instead of kafkajs retrying for half a minute or "0 dead letter(s)" for a name typed wrong.
 */
async function checkGroup(
  kafka: ReturnType<typeof createKafka>,
  group: string,
  brokers: string,
): Promise<string | undefined> {
  const admin = kafka.admin();
  try {
    const [groups, topics] = await withDeadline(
      `Kafka at ${brokers}`,
      5000,
      admin.connect().then(() => Promise.all([admin.listGroups(), admin.listTopics()])),
    );
    const known = groups.groups.some((g) => g.groupId === group) || topics.includes(deadLetterTopicOf(group));
    if (known) return undefined;
    const withLetters = topics
      .filter((topic) => topic.endsWith('.dlt'))
      .map((topic) => topic.slice(0, -'.dlt'.length))
      .sort();
    return `no consumer group '${group}' on ${brokers}, and no topic ${deadLetterTopicOf(group)}; groups with a dead-letter topic: ${withLetters.join(', ') || '(none)'}`;
  } catch (error) {
    return `cannot reach Kafka at ${brokers} (${errorMessageOf(error)}): start it (npm start, or npm run kafka:start) or set KAFKA_BROKERS`;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

function line(letter: DeadLetter): string {
  const origin =
    letter.originalTopic === null
      ? '?'
      : `${letter.originalTopic}[${letter.originalPartition}]@${letter.originalOffset}`;
  return [
    `${letter.partition}/${letter.offset}`,
    letter.failedAt ?? '-',
    letter.eventType ?? '(unparsable)',
    letter.eventId ?? '-',
    `from ${origin}`,
    `${letter.reason ?? '?'} after ${letter.attempts ?? '?'} attempt(s)`,
    `${letter.errorClass ?? '?'}: ${letter.errorMessage ?? ''}`,
  ].join('  ');
}

function asJson(letter: DeadLetter): string {
  return JSON.stringify({ ...letter, value: letter.value?.toString('utf8') ?? null });
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      group: { type: 'string' },
      type: { type: 'string' },
      id: { type: 'string' },
      partition: { type: 'string' },
      offset: { type: 'string' },
      json: { type: 'boolean', default: false },
      yes: { type: 'boolean', default: false },
      through: { type: 'string' },
      force: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const command = positionals[0];
  if (values.help || !command) {
    process.stdout.write(`${USAGE}\n`);
    return values.help ? 0 : 2;
  }
  if (!values.group) {
    process.stderr.write(`--group is required\n${USAGE}\n`);
    return 2;
  }
  const filter: DeadLetterFilter = {
    type: values.type,
    id: values.id,
    partition: values.partition === undefined ? undefined : Number(values.partition),
    offset: values.offset,
  };
  defaultBrokers();
  const config = loadConfigOrExit('dlq', kafkaToolConfigSchema);
  // Quiet and quick: a broker that does not answer is said in one line, not in pages of retries.
  const kafka = createKafka(config, 'dead-letter-cli', { retries: 2, logLevel: logLevel.NOTHING });
  const problem = await checkGroup(kafka, values.group, config.KAFKA_BROKERS.join(','));
  if (problem) {
    process.stderr.write(`dlq: ${problem}\n`);
    return 2;
  }
  const deadLetters = new DeadLetters(kafka, values.group);

  switch (command) {
    case 'list': {
      const letters = await deadLetters.list(filter);
      for (const letter of letters) process.stdout.write(`${values.json ? asJson(letter) : line(letter)}\n`);
      process.stderr.write(`${letters.length} dead letter(s) on ${deadLetters.topic}\n`);
      // Only for an unfiltered list: then the letters run from the start of each partition, and nothing unseen is in range.
      if (letters.length > 0 && Object.values(filter).every((value) => value === undefined)) {
        process.stderr.write(`purge exactly these: --through ${formatThrough(lastOffsets(letters))}\n`);
      }
      return 0;
    }
    case 'show': {
      const letters = await deadLetters.list(filter);
      for (const letter of letters) {
        if (values.json) {
          process.stdout.write(`${asJson(letter)}\n`);
          continue;
        }
        process.stdout.write(`--- ${deadLetters.topic} ${letter.partition}/${letter.offset} key=${letter.key ?? ''}\n`);
        for (const [name, value] of Object.entries(letter.headers)) process.stdout.write(`${name}: ${value}\n`);
        process.stdout.write(`\n${letter.value?.toString('utf8') ?? '(no value)'}\n`);
      }
      process.stderr.write(`${letters.length} dead letter(s) on ${deadLetters.topic}\n`);
      return 0;
    }
    case 'replay': {
      // A letter that is no valid event (or a stub) would only be dead-lettered again: said, and left, unless --force.
      const skipped = (await deadLetters.list(filter)).filter(
        (letter) => !replayable(letter) || (letter.reason === 'invalid-message' && !values.force),
      );
      for (const letter of skipped) {
        const why = replayable(letter)
          ? 'no valid event: it would only be dead-lettered again (--force replays it anyway)'
          : 'a stub (value cut) or of unknown origin: its whole message is at its original offset';
        process.stdout.write(`skipped ${line(letter)}  (${why})\n`);
      }
      const skip = new Set(skipped.map((letter) => `${letter.partition}/${letter.offset}`));
      const replayed = await deadLetters.replay(filter, (letter) => !skip.has(`${letter.partition}/${letter.offset}`));
      for (const letter of replayed) process.stdout.write(`replayed ${line(letter)}\n`);
      process.stderr.write(
        `${replayed.length} dead letter(s) republished; they stay on ${deadLetters.topic} until purged\n`,
      );
      return 0;
    }
    case 'purge': {
      if (!values.yes) {
        process.stderr.write(`purge deletes dead letters on ${deadLetters.topic} for good; add --yes to confirm\n`);
        return 2;
      }
      let through = values.through === undefined ? undefined : parseThrough(values.through);
      if (!through) {
        const seen = await deadLetters.list();
        for (const letter of seen) process.stdout.write(`deleting ${line(letter)}\n`);
        through = lastOffsets(seen);
      }
      const count = await deadLetters.purge(through);
      const upTo = through.size > 0 ? ` (through ${formatThrough(through)})` : '';
      process.stderr.write(`${count} dead letter(s) deleted from ${deadLetters.topic}${upTo}\n`);
      return 0;
    }
    default:
      process.stderr.write(`unknown command '${command}'\n${USAGE}\n`);
      return 2;
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`dlq: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
