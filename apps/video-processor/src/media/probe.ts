import type { VideoMetadata } from '@app/contracts';
import { NotAVideoError, runTool, ToolFailedError, ToolRun } from './tool';

interface ProbeOutput {
  streams?: { codec_type?: string; codec_name?: string; width?: number; height?: number; duration?: string }[];
  format?: { duration?: string; bit_rate?: string; size?: string; format_name?: string };
}

/** Reads a video's metadata with ffprobe. Not a video, or unreadable, is a NotAVideoError: it fails at once. */
export async function probe(ffprobe: string, path: string, run: Omit<ToolRun, 'onLine'>): Promise<VideoMetadata> {
  let text: string;
  try {
    text = await runTool(ffprobe, ['-v', 'error', '-print_format', 'json', '-show_format', '-show_streams', path], run);
  } catch (error) {
    // ffprobe refusing the input (exit 1) is about the input; a timeout, a missing binary (setpriv's 126/127) is not.
    if (error instanceof ToolFailedError && error.exitCode === 1) {
      throw new NotAVideoError(`not a readable video: ${error.message.replace(/^.*?: /, '')}`);
    }
    throw error;
  }
  const output = JSON.parse(text) as ProbeOutput;
  const video = output.streams?.find((s) => s.codec_type === 'video' && s.width && s.height);
  const audio = output.streams?.find((s) => s.codec_type === 'audio');
  const duration = Number(output.format?.duration ?? video?.duration ?? NaN);
  if (!video || !video.codec_name || !(duration > 0)) {
    throw new NotAVideoError(`no video stream with a duration (${output.format?.format_name ?? 'unknown format'})`);
  }
  return {
    durationSeconds: Math.round(duration * 1000) / 1000,
    width: video.width as number,
    height: video.height as number,
    videoCodec: video.codec_name,
    ...(audio?.codec_name ? { audioCodec: audio.codec_name } : {}),
    bitRate: Number(output.format?.bit_rate ?? 0) || 0,
    sizeBytes: Number(output.format?.size ?? 0) || 0,
  };
}
