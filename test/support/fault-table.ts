import { ReceivedMail } from './smtp';

/** One row of a fault suite's summary: what was created, published and emailed, and what went wrong. */
export interface FaultRow {
  scenario: string;
  created: number;
  published: number;
  emails: number;
  duplicates: number;
  deadLetters: number;
  lost: number;
  note?: string;
}

export const eventIdOf = (mail: ReceivedMail) => mail.messageId.replace(/^<|@.*$/g, '');

/** Emails per expected event id: lost = expected ids never mailed, duplicates = extra deliveries of one id. */
export function tally(mails: ReceivedMail[], expected: string[]): { emails: number; duplicates: number; lost: number } {
  const counts = new Map<string, number>();
  for (const mail of mails) counts.set(eventIdOf(mail), (counts.get(eventIdOf(mail)) ?? 0) + 1);
  const mine = expected.map((id) => counts.get(id) ?? 0);
  return {
    emails: mine.filter((n) => n > 0).length,
    duplicates: mine.reduce((sum, n) => sum + Math.max(0, n - 1), 0),
    lost: mine.filter((n) => n === 0).length,
  };
}

/** Prints the rows as a table on stdout (the suite's summary). */
export function printFaultTable(title: string, rows: FaultRow[]): void {
  const table = rows.map((row) => ({ ...row, note: row.note ?? '' }));
  const widths = Object.keys(table[0] ?? {}).map((key) =>
    Math.max(key.length, ...table.map((row) => String(row[key as keyof typeof row]).length)),
  );
  const format = (values: string[]) => values.map((v, i) => v.padEnd(widths[i])).join(' | ');
  const lines = [
    format(Object.keys(table[0] ?? {})),
    widths.map((w) => '-'.repeat(w)).join('-|-'),
    ...table.map((row) => format(Object.values(row).map(String))),
  ];
  process.stdout.write(`\n${title}\n${lines.join('\n')}\n\n`);
}
