import { parseArgs } from 'node:util';
import { kafkaToolConfigSchema, loadConfigOrExit } from '@app/config';
import { DeadLetter, DeadLetterFilter, DeadLetters, formatThrough, lastOffsets, parseThrough } from './dead-letters';
import { createKafka } from './kafka.factory';

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
Kafka connection from the usual variables: KAFKA_BROKERS, KAFKA_SSL, KAFKA_SASL_*.`;

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
  const config = loadConfigOrExit('dlq', kafkaToolConfigSchema);
  const deadLetters = new DeadLetters(createKafka(config, 'dead-letter-cli'), values.group);

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
      const replayed = await deadLetters.replay(filter);
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
