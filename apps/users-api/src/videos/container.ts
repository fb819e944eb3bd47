/** Bytes needed to recognise every container below. */
export const SNIFF_BYTES = 4100;

/**
 * The container a file is, from its first bytes (its signature), never from its name: ISO BMFF (`ftyp` box: MP4,
 * or QuickTime MOV by its brand), Matroska (EBML header: WebM by its doctype, else MKV), AVI (RIFF … AVI).
 * Undefined for anything else. Whether the content is a playable video is ffprobe's call, in the processor.
 */
export function detectContainer(head: Buffer): 'mp4' | 'mov' | 'webm' | 'mkv' | 'avi' | undefined {
  if (head.length >= 12 && head.toString('latin1', 4, 8) === 'ftyp') {
    return head.toString('latin1', 8, 12) === 'qt  ' ? 'mov' : 'mp4';
  }
  if (head.length >= 4 && head.readUInt32BE(0) === 0x1a45dfa3) {
    // The DocType element (0x4282) of the EBML header names the flavour.
    const docType = head.subarray(0, 64).indexOf(Buffer.from([0x42, 0x82]));
    if (docType >= 0 && head.toString('latin1', docType + 3, docType + 7) === 'webm') return 'webm';
    return 'mkv';
  }
  if (head.length >= 12 && head.toString('latin1', 0, 4) === 'RIFF' && head.toString('latin1', 8, 12) === 'AVI ') {
    return 'avi';
  }
  return undefined;
}
