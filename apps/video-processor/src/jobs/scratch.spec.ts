import { scratchKey, scratchOfEndedRuns } from './scratch';

describe('scratch directories of video runs', () => {
  const dir = 'videos/0b7c6f52-8a3e-4b59-9e4a-1f0a2d3c4b5e';

  it('names a run by its claim number', () => {
    expect(scratchKey(dir, 3)).toMatch(new RegExp(`^${dir}/run-3-[0-9a-f]{8}$`));
  });

  it('removes the scratch of earlier claims and of unnumbered runs, never its own or a later claim', () => {
    const keys = [
      `${dir}/run-1-0a0a0a0a`,
      `${dir}/run-2-1b1b1b1b`,
      `${dir}/run-3-2c2c2c2c`,
      `${dir}/run-4-3d3d3d3d`,
      `${dir}/run-12-4e4e4e4e`,
      `${dir}/run-5f5f5f5f`,
      `${dir}/thumbnail.jpg`,
      `${dir}/preview.mp4`,
      `${dir}/run-notes`,
    ];
    expect(scratchOfEndedRuns(keys, 3)).toEqual([
      `${dir}/run-1-0a0a0a0a`,
      `${dir}/run-2-1b1b1b1b`,
      `${dir}/run-5f5f5f5f`,
    ]);
  });

  it('a first run removes only unnumbered leftovers', () => {
    expect(scratchOfEndedRuns([`${dir}/run-1-0a0a0a0a`, `${dir}/run-2-1b1b1b1b`, `${dir}/run-9a9a9a9a`], 1)).toEqual([
      `${dir}/run-9a9a9a9a`,
    ]);
  });
});
