import { detectContainer } from './container';

const bytes = (...parts: (string | number[])[]) =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));

describe('detectContainer', () => {
  it('recognises MP4 and MOV by the ftyp box and its brand', () => {
    expect(detectContainer(bytes([0, 0, 0, 0x20], 'ftypisom', [0, 0, 2, 0]))).toBe('mp4');
    expect(detectContainer(bytes([0, 0, 0, 0x14], 'ftypqt  ', [0, 0, 0, 0]))).toBe('mov');
  });

  it('tells WebM from MKV by the EBML doctype', () => {
    const ebml = [0x1a, 0x45, 0xdf, 0xa3, 0x9f, 0x42, 0x86, 0x81, 0x01];
    expect(detectContainer(bytes(ebml, [0x42, 0x82, 0x84], 'webm'))).toBe('webm');
    expect(detectContainer(bytes(ebml, [0x42, 0x82, 0x88], 'matroska'))).toBe('mkv');
  });

  it('recognises AVI', () => {
    expect(detectContainer(bytes('RIFF', [0, 0, 0, 0], 'AVI LIST'))).toBe('avi');
    expect(detectContainer(bytes('RIFF', [0, 0, 0, 0], 'WAVEfmt '))).toBeUndefined();
  });

  it('refuses text, whatever its name, and files too short to tell', () => {
    expect(detectContainer(Buffer.from('just some text pretending to be a video\n'))).toBeUndefined();
    expect(detectContainer(Buffer.from('ftyp'))).toBeUndefined();
    expect(detectContainer(Buffer.alloc(0))).toBeUndefined();
  });
});
