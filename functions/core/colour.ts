import * as z from 'zod';
import { TRAINED_ALGORITHMIC_MEDIA } from './png.ts';

/**
 * The EXR header attribute that declares a frame AI-generated, as a PNG's XMP does (IPTC's digital source
 * type). EXR has no standard XMP place; a reader of the header (exrheader, oiiotool --info, exiftool)
 * shows it by this name, with the IPTC property's own name.
 */
export const EXR_DIGITAL_SOURCE_TYPE = 'Iptc4xmpExt:DigitalSourceType';

/**
 * The colour pipeline's rules (docs/colour.md): which OCIO config and colour spaces a production uses, what
 * an output frame is delivered as, and the oiiotool command lines that convert between a plate's colour
 * space and the model's. Pure: the conversions themselves run in OpenImageIO and OpenColorIO
 * (adapters/oiio.ts); nothing here computes a colour.
 */

/** What a job's frames are delivered as: the model's 8-bit sRGB PNG, or 16-bit half EXR in the plates' space. */
export const OUTPUT_FORMATS = ['png', 'exr'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** Lossless EXR compressions a compositor's tools all read. */
export const EXR_COMPRESSIONS = ['zip', 'piz'] as const;
export type ExrCompression = (typeof EXR_COMPRESSIONS)[number];

/** The config the project ships (colour/framecast.ocio), relative to the project (and the worker image's) root. */
export const DEFAULT_OCIO_CONFIG = 'colour/framecast.ocio';

/**
 * An OCIO colour space name as configs write them (`ACEScg`, `sRGB - Texture`, `ARRI LogC3 (EI800)`):
 * letters, digits, spaces and `._()+-`. Anything else (a quote, a brace, a newline) is refused before it
 * reaches a command line.
 */
export const ColourSpaceName = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9 ._()+-]{0,63}$/,
    'must be an OCIO colour space name (letters, digits, spaces, ._()+-)',
  );

/** A config file inside the project's colour/ folder, so the worker image carries it (Dockerfile copies colour/). */
export const OcioConfigPath = z
  .string()
  .regex(
    /^colour\/[A-Za-z0-9_.-]+\.ocio$/,
    'must be an OCIO config in the colour/ folder, e.g. colour/show.ocio',
  )
  .refine((p) => !p.includes('..'), 'must not contain ".."');

export interface ColourSettings {
  /** Path of the OCIO config, as the process resolves it. */
  readonly config: string;
  /** The colour space of EXR plates, and of EXR output frames. */
  readonly plates: string;
  /** The colour space the model reads and writes (its 8-bit PNGs). */
  readonly model: string;
  readonly compression: ExrCompression;
}

export const DEFAULT_COLOUR: Omit<ColourSettings, 'config'> = {
  plates: 'ACEScg',
  model: 'sRGB - Texture',
  compression: 'zip',
};

/**
 * CIE xy of the red, green and blue primaries and the white point: OpenEXR's standard `chromaticities`
 * attribute, for the colour spaces of the project's config whose primaries are published (ACES: S-2014-004
 * AP0 and AP1; Rec.709 / sRGB: ITU-R BT.709; ALEXA Wide Gamut 3: ARRI). A name not listed (a show config's
 * own) is still named in the header's `colorSpace` attribute.
 */
const AP0 = [0.7347, 0.2653, 0.0, 1.0, 0.0001, -0.077, 0.32168, 0.33767] as const;
const AP1 = [0.713, 0.293, 0.165, 0.83, 0.128, 0.044, 0.32168, 0.33767] as const;
const REC709 = [0.64, 0.33, 0.3, 0.6, 0.15, 0.06, 0.3127, 0.329] as const;
const AWG3 = [0.684, 0.313, 0.221, 0.848, 0.0861, -0.102, 0.3127, 0.329] as const;
export const CHROMATICITIES: Readonly<Record<string, readonly number[]>> = {
  'ACES2065-1': AP0,
  ACEScg: AP1,
  ACEScct: AP1,
  'Linear Rec.709 (sRGB)': REC709,
  'sRGB - Texture': REC709,
  'ARRI LogC3 (EI800)': AWG3,
};

/** The first four bytes of every OpenEXR file. */
export const isExr = (bytes: Uint8Array): boolean =>
  bytes.length >= 4 && bytes[0] === 0x76 && bytes[1] === 0x2f && bytes[2] === 0x31 && bytes[3] === 0x01;

/** Keeps the command line out of the file: paths of the machine and its history do not belong in a deliverable. */
const QUIET = ['Software', 'Exif:ImageHistory', 'DateTime'].flatMap((name) => ['--eraseattrib', name]);

/** Reads `input`'s RGB as colour space `from` and converts it to `to`, with no trace of the run in the file. */
const convert = (s: ColourSettings, input: string, from: string, to: string): string[] => [
  '--evaloff',
  '--nosoftwareattrib',
  '--colorconfig',
  s.config,
  '-i',
  input,
  '--ch',
  'R,G,B',
  '--iscolorspace',
  from,
  '--colorconvert',
  from,
  to,
  ...QUIET,
];

/**
 * oiiotool arguments that turn an EXR plate frame into what the model reads: the model's colour space,
 * 8-bit PNG, RGB (alpha and other channels dropped). Values outside the model space's range are clipped by
 * the 8-bit encoding, as any 8-bit view of a scene-linear plate is.
 */
export function plateToModelArgs(s: ColourSettings, input: string, output: string): string[] {
  return [...convert(s, input, s.plates, s.model), '-d', 'uint8', '-o', output];
}

/**
 * oiiotool arguments that turn a model's PNG frame into a delivered EXR: the plates' colour space, 16-bit
 * half, lossless compression, the colour space named in the header (`colorSpace`, and OpenEXR's standard
 * `chromaticities` where the primaries are known) and the frame's provenance as a string attribute.
 */
export function modelToExrArgs(
  s: ColourSettings,
  input: string,
  output: string,
  provenance?: string,
): string[] {
  const chromaticities = CHROMATICITIES[s.plates];
  return [
    ...convert(s, input, s.model, s.plates),
    '--eraseattrib',
    'framecast:provenance',
    '--attrib',
    'colorSpace',
    s.plates,
    ...(chromaticities ? ['--attrib:type=float[8]', 'chromaticities', chromaticities.join(',')] : []),
    ...(provenance !== undefined
      ? [
          '--attrib',
          'framecast:provenance',
          provenance,
          '--attrib',
          EXR_DIGITAL_SOURCE_TYPE,
          TRAINED_ALGORITHMIC_MEDIA,
        ]
      : []),
    '-d',
    'half',
    '--compression',
    s.compression,
    '-o',
    output,
  ];
}
