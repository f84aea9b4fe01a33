import type { FrameRange } from './frames.ts';

/**
 * OpenTimelineIO (docs/colour.md, "Interchange"): each finished job writes a `.otio` file beside its
 * manifest, a timeline of one clip whose media is the job's frame sequence, so an editor or a pipeline
 * tool (OTIO's own library, RV, Hiero/Nuke Studio, Resolve through its adapter) opens the shot as one clip.
 * Written by hand from OTIO's documented JSON file format (no OTIO library exists for Node): every object
 * a dictionary with its `OTIO_SCHEMA` name and version. Pure.
 */

/** The schema versions written, as the OTIO file format specification names them (OTIO 0.15 and later). */
export const OTIO_SCHEMAS = {
  timeline: 'Timeline.1',
  stack: 'Stack.1',
  track: 'Track.1',
  clip: 'Clip.2',
  imageSequence: 'ImageSequenceReference.1',
  timeRange: 'TimeRange.1',
  rationalTime: 'RationalTime.1',
} as const;

/** OTIO's key of a clip's one media reference. */
export const DEFAULT_MEDIA = 'DEFAULT_MEDIA';

export interface RationalTime {
  OTIO_SCHEMA: 'RationalTime.1';
  rate: number;
  value: number;
}

export interface TimeRange {
  OTIO_SCHEMA: 'TimeRange.1';
  start_time: RationalTime;
  duration: RationalTime;
}

export interface ImageSequenceReference {
  OTIO_SCHEMA: 'ImageSequenceReference.1';
  name: string;
  metadata: Record<string, unknown>;
  available_range: TimeRange;
  available_image_bounds: null;
  target_url_base: string;
  name_prefix: string;
  name_suffix: string;
  start_frame: number;
  frame_step: number;
  rate: number;
  frame_zero_padding: number;
  missing_frame_policy: 'error' | 'black' | 'hold';
}

export interface SequenceSpec {
  /** The timeline's and clip's name: the shot. */
  readonly name: string;
  /** Where the frames are (`s3://bucket/tenant/shot/job/`); OTIO joins it to each frame name with a "/". */
  readonly targetUrlBase: string;
  readonly prefix: string;
  readonly suffix: string;
  readonly padding: number;
  readonly frames: FrameRange;
  /** Frames per second. */
  readonly rate: number;
  /** False when some frames are missing (a failed job): players show black for them instead of refusing. */
  readonly complete: boolean;
  readonly metadata?: Record<string, unknown>;
}

const time = (value: number, rate: number): RationalTime => ({ OTIO_SCHEMA: 'RationalTime.1', rate, value });
const range = (start: number, duration: number, rate: number): TimeRange => ({
  OTIO_SCHEMA: 'TimeRange.1',
  start_time: time(start, rate),
  duration: time(duration, rate),
});

/** The timeline of one clip referring to a job's frame sequence. */
export function sequenceTimeline(s: SequenceSpec) {
  if (!(s.rate > 0)) throw new RangeError(`rate must be positive, not ${s.rate}`);
  const count = s.frames.end - s.frames.start + 1;
  const available = range(s.frames.start, count, s.rate);
  const media: ImageSequenceReference = {
    OTIO_SCHEMA: 'ImageSequenceReference.1',
    name: s.name,
    metadata: {},
    available_range: available,
    available_image_bounds: null,
    target_url_base: s.targetUrlBase,
    name_prefix: s.prefix,
    name_suffix: s.suffix,
    start_frame: s.frames.start,
    frame_step: 1,
    rate: s.rate,
    frame_zero_padding: s.padding,
    missing_frame_policy: s.complete ? 'error' : 'black',
  };
  const item = { metadata: {}, source_range: null, effects: [], markers: [], enabled: true };
  return {
    OTIO_SCHEMA: OTIO_SCHEMAS.timeline,
    name: s.name,
    metadata: { framecast: s.metadata ?? {} },
    global_start_time: time(s.frames.start, s.rate),
    tracks: {
      OTIO_SCHEMA: OTIO_SCHEMAS.stack,
      name: 'tracks',
      ...item,
      children: [
        {
          OTIO_SCHEMA: OTIO_SCHEMAS.track,
          name: 'Video 1',
          ...item,
          kind: 'Video',
          children: [
            {
              OTIO_SCHEMA: OTIO_SCHEMAS.clip,
              name: s.name,
              ...item,
              source_range: available,
              media_references: { [DEFAULT_MEDIA]: media },
              active_media_reference_key: DEFAULT_MEDIA,
            },
          ],
        },
      ],
    },
  };
}

/**
 * The URL of each image of an ImageSequenceReference, as OTIO's `target_url_for_image_number` makes it:
 * the base (with a "/" added unless it ends in one), the prefix, the frame number zero-padded, the suffix;
 * image i is frame `start_frame + i * frame_step`, for every frame of the available range.
 */
export function sequenceUrls(ref: ImageSequenceReference): { frame: number; url: string }[] {
  const count = Math.round(
    (ref.available_range.duration.value / ref.available_range.duration.rate) * ref.rate,
  );
  const base =
    ref.target_url_base === '' || ref.target_url_base.endsWith('/')
      ? ref.target_url_base
      : `${ref.target_url_base}/`;
  return Array.from({ length: Math.ceil(count / ref.frame_step) }, (_, i) => {
    const frame = ref.start_frame + i * ref.frame_step;
    const digits = String(Math.abs(frame)).padStart(ref.frame_zero_padding, '0');
    return { frame, url: `${base}${ref.name_prefix}${frame < 0 ? '-' : ''}${digits}${ref.name_suffix}` };
  });
}
