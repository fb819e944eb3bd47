import { randomUUID } from 'node:crypto';

/** A run's scratch directory under the video's, named by the run number of its claim. */
export function scratchKey(directory: string, run: number): string {
  return `${directory}/run-${run}-${randomUUID().slice(0, 8)}`;
}

/**
 * The scratch directories, among `keys`, of runs whose claim is over, for the run holding claim number `ownRun`:
 * earlier runs (a later claim of the event supersedes theirs) and unnumbered ones (left by a version that did not
 * number them: no claim of theirs can be live while this run holds the event's). Never this run's own nor a later
 * run's: if a later one exists, this run is the one whose claim is over, and the live run's scratch stays.
 */
export function scratchOfEndedRuns(keys: string[], ownRun: number): string[] {
  return keys.filter((key) => {
    const numbered = /\/run-(\d+)-[0-9a-f]{8}$/.exec(key);
    if (numbered) return Number(numbered[1]) < ownRun;
    return /\/run-[0-9a-f]{8}$/.test(key);
  });
}
