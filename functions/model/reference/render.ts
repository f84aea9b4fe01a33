import { createHash } from 'node:crypto';

/**
 * The reference model's renderer: a deterministic procedural landscape (sky, sun, drifting clouds, layered
 * ridges with parallax, sometimes water) standing in for a diffusion model on machines without a GPU.
 *
 * - The prompt and seed choose the scene: palette, sun, ridges, clouds. Prompt words such as "night",
 *   "sunset", "desert", "snow", "forest" or "ocean" steer the palette, so a prompt visibly matters.
 * - The frame number is time: the camera drifts and the clouds evolve, so frame N and N+1 differ little
 *   and frames a second apart differ clearly, like a shot.
 * - Pixels use only IEEE-exact arithmetic (+ - * / sqrt floor, no Math.sin/exp/pow, whose last bits may
 *   differ between engines), so a frame regenerates bit for bit on any platform, as provenance promises.
 * - Noise is evaluated on a coarse grid and interpolated, and no allocation happens per pixel: about 50 ms
 *   for 1024x576 on one core.
 */

export interface FrameRequest {
  readonly prompt: string;
  readonly negativePrompt?: string;
  /** uint32: the frame's own seed. Chooses the scene unless `shotSeed` is given; varies the grain. */
  readonly seed: number;
  /** uint32: the shot's seed. When given it chooses the scene, so per-frame seeds keep one scene. */
  readonly shotSeed?: number;
  readonly frame: number;
  readonly width: number;
  readonly height: number;
}

/** Renders one frame: `width * height * 3` bytes of 8-bit RGB, row-major. */
export function renderFrame(req: FrameRequest): Uint8Array {
  const { width: W, height: H, frame } = req;
  for (const [name, n] of [
    ['width', W],
    ['height', H],
  ] as const) {
    if (!Number.isInteger(n) || n < 1 || n > 16384)
      throw new RangeError(`${name} must be an integer from 1 to 16384`);
  }
  if (!Number.isInteger(req.seed) || req.seed < 0 || req.seed > 0xffff_ffff)
    throw new RangeError('seed must be a uint32');
  if (!Number.isInteger(frame)) throw new RangeError('frame must be an integer');

  if (
    req.shotSeed !== undefined &&
    (!Number.isInteger(req.shotSeed) || req.shotSeed < 0 || req.shotSeed > 0xffff_ffff)
  )
    throw new RangeError('shotSeed must be a uint32');
  const scene = sceneFor(req.prompt, req.shotSeed ?? req.seed, req.negativePrompt);
  const out = new Uint8ClampedArray(W * H * 3);
  // Scene coordinates are in units of the frame height, so other sizes show the same composition.
  const invH = 1 / H;
  const cam = frame * scene.drift;

  // Coarse grids for the 2D fields, bilinearly interpolated per pixel.
  const step = Math.max(2, Math.round(H / 144));
  const gw = Math.ceil(W / step) + 2;
  const gh = Math.ceil(H / step) + 2;
  const colIndex = new Int32Array(W);
  const colFrac = new Float64Array(W);
  for (let x = 0; x < W; x++) {
    const g = x / step;
    colIndex[x] = Math.floor(g);
    colFrac[x] = g - Math.floor(g);
  }

  const clouds = new Float64Array(gw * gh);
  const cloudTime = frame * scene.wind;
  for (let gy = 0; gy < gh; gy++) {
    const v = gy * step * invH;
    for (let gx = 0; gx < gw; gx++) {
      const u = gx * step * invH + cam * 0.1;
      const cs = scene.cloudScale;
      // A second, slower field shifting the first makes clouds change shape, not only slide.
      const warp = fbm2(scene.noise, u * cs * 0.5 - cloudTime * 0.6, v * cs + 17.3, 2, 0.5);
      clouds[gy * gw + gx] = fbm2(scene.noise, u * cs + cloudTime + warp * 1.4, v * cs * 2.4 + warp, 5, 0.52);
    }
  }

  const layers = scene.layers;
  const ridges = layers.map(() => new Float64Array(W + 2));
  const textures = layers.map(() => new Float64Array(gw * gh));
  layers.forEach((layer, i) => {
    const ridge = ridges[i]!;
    const shift = cam * layer.parallax + layer.offset;
    for (let x = -1; x <= W; x++) {
      const n = fbm1(scene.noise, x * invH * layer.freq + shift, layer.octaves);
      const shape = layer.ridged ? 1 - Math.abs(2 * n - 1) : n;
      ridge[x + 1] = (layer.base - layer.amp * shape) * H;
    }
    const tex = textures[i]!;
    const ts = 6 + 10 * layer.depth;
    for (let gy = 0; gy < gh; gy++) {
      const v = gy * step * invH;
      for (let gx = 0; gx < gw; gx++) {
        const u = gx * step * invH + cam * layer.parallax;
        tex[gy * gw + gx] = fbm2(scene.noise, u * ts + layer.offset, v * ts * 1.7, 2, 0.5);
      }
    }
  });

  const vignetteX = new Float64Array(W);
  for (let x = 0; x < W; x++) {
    const d = (x + 0.5) / W - 0.5;
    vignetteX[x] = 1 - 0.35 * d * d;
  }

  const { skyTop, skyHorizon, sunColor, fog, cloudLit, cloudShadow } = scene;
  const horizonV = scene.horizon;
  const sunU = scene.sunX * (W * invH);
  const sunV = scene.sunY;
  const sunR = scene.sunRadius;
  const waterRow = scene.water ? Math.floor(scene.water.level * H) : H;

  for (let y = 0; y < H; y++) {
    const v = (y + 0.5) * invH;
    const gyf = y / step;
    const gy0 = Math.floor(gyf);
    const fy = gyf - gy0;
    const row0 = gy0 * gw;
    const row1 = row0 + gw;
    const dy = v - 0.5;
    const vignetteY = 1 - 0.5 * dy * dy;
    let at = y * W * 3;

    if (y >= waterRow) {
      reflectRow(out, scene, y, waterRow, W, H, frame, vignetteY, vignetteX);
      continue;
    }

    // Sky terms that depend on the row only.
    let t = v / horizonV;
    if (t > 1) t = 1;
    const ts = t * Math.sqrt(t);
    const skyR = skyTop[0] + (skyHorizon[0] - skyTop[0]) * ts;
    const skyG = skyTop[1] + (skyHorizon[1] - skyTop[1]) * ts;
    const skyB = skyTop[2] + (skyHorizon[2] - skyTop[2]) * ts;
    // Clouds thin out towards the horizon and vanish below it.
    let cloudFade = (horizonV - v) / (horizonV * 0.45);
    cloudFade = clamp01(cloudFade);
    const dv = v - sunV;

    for (let x = 0; x < W; x++, at += 3) {
      let r: number;
      let g: number;
      let b: number;

      let hit = -1;
      for (let i = layers.length - 1; i >= 0; i--) {
        if (y >= ridges[i]![x + 1]!) {
          hit = i;
          break;
        }
      }

      const gx0 = colIndex[x]!;
      const fx = colFrac[x]!;
      if (hit < 0) {
        const u = (x + 0.5) * invH;
        const du = u - sunU;
        const d2 = du * du + dv * dv;
        const glow = scene.sunGlow / (1 + d2 * scene.sunFalloff);
        r = skyR + sunColor[0] * glow;
        g = skyG + sunColor[1] * glow;
        b = skyB + sunColor[2] * glow;
        const dist = Math.sqrt(d2);
        if (dist < sunR * 1.15) {
          const k = Math.min(1, (sunR * 1.15 - dist) / (sunR * 0.15));
          r += (sunColor[0] * 1.2 - r) * k;
          g += (sunColor[1] * 1.2 - g) * k;
          b += (sunColor[2] * 1.2 - b) * k;
        } else if (scene.stars && starAt(x + Math.floor(cam * 0.05 * H), y, scene.starSeed)) {
          const s = 0.55 * (1 - t);
          r += s;
          g += s;
          b += s;
        }
        if (cloudFade > 0) {
          const c0 = clouds[row0 + gx0]! + (clouds[row0 + gx0 + 1]! - clouds[row0 + gx0]!) * fx;
          const c1 = clouds[row1 + gx0]! + (clouds[row1 + gx0 + 1]! - clouds[row1 + gx0]!) * fx;
          const density = c0 + (c1 - c0) * fy;
          let a = (density - scene.cloudCover) * 3.2;
          if (a > 0) {
            a = a > 1 ? cloudFade : a * (2 - a) * cloudFade;
            const lit = density > 0.85 ? 1 : density * 1.15;
            const light = 0.6 * glow;
            const cr = cloudShadow[0] + (cloudLit[0] - cloudShadow[0]) * lit + sunColor[0] * light;
            const cg = cloudShadow[1] + (cloudLit[1] - cloudShadow[1]) * lit + sunColor[1] * light;
            const cb = cloudShadow[2] + (cloudLit[2] - cloudShadow[2]) * lit + sunColor[2] * light;
            r += (cr - r) * a;
            g += (cg - g) * a;
            b += (cb - b) * a;
          }
        }
      } else {
        const layer = layers[hit]!;
        const ridge = ridges[hit]!;
        const top = ridge[x + 1]!;
        const tex = textures[hit]!;
        const t0 = tex[row0 + gx0]! + (tex[row0 + gx0 + 1]! - tex[row0 + gx0]!) * fx;
        const t1 = tex[row1 + gx0]! + (tex[row1 + gx0 + 1]! - tex[row1 + gx0]!) * fx;
        const grain = 0.78 + 0.44 * (t0 + (t1 - t0) * fy);
        // Shade by depth below the layer's highest possible ridge, not the local one: the latter paints
        // vertical bands under every peak.
        const below = clamp01((v - layer.base + layer.amp) * layer.falloff);
        const shade = (1 - 0.45 * below) * grain;
        r = layer.color[0] * shade;
        g = layer.color[1] * shade;
        b = layer.color[2] * shade;
        // Slopes facing the sun catch a rim of light along the ridge line.
        const rim = (y - top) * invH * 90;
        if (rim < 1) {
          const slope = clamp01((ridge[x]! - ridge[x + 2]!) * scene.sunSide * invH * 60);
          const k = (1 - rim) * slope * layer.rim;
          r += sunColor[0] * k;
          g += sunColor[1] * k;
          b += sunColor[2] * k;
        }
        // Distant layers fade into the haze of the horizon: aerial perspective.
        const haze = layer.haze * (1 - 0.5 * below);
        r += (fog[0] - r) * haze;
        g += (fog[1] - g) * haze;
        b += (fog[2] - b) * haze;
      }

      const vig = vignetteX[x]! * vignetteY * 255;
      out[at] = r * vig;
      out[at + 1] = g * vig;
      out[at + 2] = b * vig;
    }
  }
  if (req.shotSeed !== undefined) addGrain(out, req.seed);
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/**
 * Film grain from the frame's own seed: with a shot seed choosing the scene, this is what the per-frame
 * seed changes, a little, as a diffusion model's noise would. xorshift32: integer-exact everywhere.
 */
function addGrain(out: Uint8ClampedArray, seed: number): void {
  let h = (seed ^ 0x9e3779b9) >>> 0 || 1;
  for (let i = 0; i < out.length; i++) {
    h ^= h << 13;
    h >>>= 0;
    h ^= h >>> 17;
    h ^= h << 5;
    h >>>= 0;
    out[i] = out[i]! + ((h & 3) - 1.5);
  }
}

// ---- water ----------------------------------------------------------------------------------------------

/** A row of water: the rows above it mirrored, rippled and tinted. Needs those rows already rendered. */
function reflectRow(
  out: Uint8ClampedArray,
  scene: Scene,
  y: number,
  waterRow: number,
  W: number,
  H: number,
  frame: number,
  vignetteY: number,
  vignetteX: Float64Array,
): void {
  const water = scene.water!;
  const depth = (y - waterRow) / (H - waterRow + 1);
  let mirror = 2 * waterRow - y - 1;
  if (mirror < 0) mirror = 0;
  // Ripples grow towards the viewer and travel with time.
  const ripple = (value1(scene.noise, y * 0.37 + frame * 0.21) - 0.5) * (2 + depth * 14) * (H / 576);
  const offset = Math.round(ripple);
  const mix = 0.3 + 0.5 * depth;
  const [wr, wg, wb] = water.color;
  const src = mirror * W * 3;
  let at = y * W * 3;
  for (let x = 0; x < W; x++, at += 3) {
    let sx = x + offset;
    sx = sx < 0 ? 0 : sx >= W ? W - 1 : sx;
    const from = src + sx * 3;
    const vig = vignetteX[x]! * vignetteY;
    const r = out[from]! / 255;
    const g = out[from + 1]! / 255;
    const b = out[from + 2]! / 255;
    out[at] = (r + (wr * vig - r) * mix) * 255;
    out[at + 1] = (g + (wg * vig - g) * mix) * 255;
    out[at + 2] = (b + (wb * vig - b) * mix) * 255;
  }
}

// ---- scene ----------------------------------------------------------------------------------------------

type RGB = readonly [number, number, number];

interface Layer {
  base: number;
  amp: number;
  freq: number;
  octaves: number;
  ridged: boolean;
  parallax: number;
  offset: number;
  depth: number;
  color: RGB;
  haze: number;
  falloff: number;
  rim: number;
}

interface Scene {
  noise: Noise;
  skyTop: RGB;
  skyHorizon: RGB;
  fog: RGB;
  sunColor: RGB;
  sunX: number;
  sunY: number;
  sunRadius: number;
  sunGlow: number;
  sunFalloff: number;
  sunSide: number;
  cloudLit: RGB;
  cloudShadow: RGB;
  cloudCover: number;
  cloudScale: number;
  wind: number;
  drift: number;
  horizon: number;
  layers: Layer[];
  water?: { level: number; color: RGB };
  stars: boolean;
  starSeed: number;
}

type Mood = 'day' | 'dusk' | 'night' | 'alien';
type Ground = 'hills' | 'desert' | 'snow' | 'forest' | 'rock';

const words = (prompt: string, re: RegExp): boolean => re.test(prompt.toLowerCase());

function sceneFor(prompt: string, seed: number, negativePrompt = ''): Scene {
  const rand = prng(digest(`scene\0${prompt}\0${seed}`));
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;
  const between = (lo: number, hi: number) => lo + (hi - lo) * rand();
  // A negative prompt nudges colour, as it would in a diffusion model, without changing the composition.
  const neg = prng(digest(`negative\0${negativePrompt}`));
  const hueNudge = negativePrompt ? (neg() - 0.5) * 16 : 0;
  const satScale = negativePrompt ? 0.8 + 0.15 * neg() : 1;
  const hsl = (h: number, s: number, l: number): RGB => hslToRgb(h + hueNudge, s * satScale, l);

  const mood: Mood = words(prompt, /night|midnight|moon|stars?\b|nocturn/)
    ? 'night'
    : words(prompt, /sunset|sunrise|dusk|dawn|golden hour|evening|twilight/)
      ? 'dusk'
      : words(prompt, /alien|mars|planet|sci-?fi|dream|surreal|neon/)
        ? 'alien'
        : pick<Mood>(['day', 'day', 'day', 'day', 'dusk', 'dusk', 'alien', 'night']);
  const ground: Ground = words(prompt, /desert|dune|sand|canyon/)
    ? 'desert'
    : words(prompt, /snow|winter|ice|arctic|frozen|glacier/)
      ? 'snow'
      : words(prompt, /forest|jungle|wood|green|meadow|valley/)
        ? 'forest'
        : pick<Ground>(['hills', 'desert', 'snow', 'forest', 'rock']);
  const water = words(prompt, /ocean|sea\b|lake|river|coast|beach|harbou?r|water|shore/) || rand() < 0.3;

  const hue = between(0, 360);
  let skyTop: RGB;
  let skyHorizon: RGB;
  let sunColor: RGB;
  switch (mood) {
    case 'day':
      skyTop = hsl(between(200, 228), between(0.5, 0.8), between(0.32, 0.46));
      skyHorizon = hsl(between(190, 215), between(0.3, 0.6), between(0.74, 0.86));
      sunColor = hsl(between(40, 55), 0.9, 0.85);
      break;
    case 'dusk':
      skyTop = hsl(between(225, 285), between(0.35, 0.6), between(0.16, 0.28));
      skyHorizon = hsl(between(8, 42), between(0.75, 0.95), between(0.52, 0.64));
      sunColor = hsl(between(18, 40), 1, 0.62);
      break;
    case 'night':
      skyTop = hsl(between(215, 245), between(0.4, 0.6), between(0.05, 0.1));
      skyHorizon = hsl(between(200, 250), between(0.3, 0.5), between(0.2, 0.3));
      sunColor = hsl(between(200, 230), 0.25, 0.82);
      break;
    default:
      skyTop = hsl(hue, between(0.4, 0.8), between(0.15, 0.35));
      skyHorizon = hsl(hue + between(60, 150), between(0.5, 0.9), between(0.5, 0.7));
      sunColor = hsl(hue + between(150, 210), 0.8, 0.7);
  }
  const fog = mixRgb(skyHorizon, skyTop, 0.15);
  const dark = mood === 'night' ? 0.4 : mood === 'dusk' ? 0.55 : 1;

  const groundHue: Record<Ground, [number, number, number]> = {
    hills: [85, 120, 0.35],
    desert: [22, 42, 0.55],
    snow: [200, 220, 0.12],
    forest: [95, 150, 0.45],
    rock: [20, 40, 0.15],
  };
  const [gh0, gh1, gs] = groundHue[ground];
  const groundLight = ground === 'snow' ? 0.82 : ground === 'desert' ? 0.55 : 0.34;
  const baseHue = mood === 'alien' ? hue + between(90, 270) : between(gh0, gh1);

  const horizon = between(0.46, 0.62);
  const count = 3 + Math.floor(rand() * 3);
  const layers: Layer[] = [];
  for (let i = 0; i < count; i++) {
    const depth = (i + 1) / count;
    const far = 1 - depth;
    layers.push({
      base: horizon + 0.02 + depth * depth * between(0.28, 0.4) * (1 - horizon),
      amp: (0.1 + 0.22 * far) * between(0.7, 1.3),
      freq: (1.2 + 3 * depth) * between(0.7, 1.4),
      octaves: 4 + Math.floor(depth * 2),
      ridged: far > 0.4 && rand() < 0.7,
      parallax: 0.12 + 0.88 * depth * depth,
      offset: between(0, 1000),
      depth,
      color: hsl(
        baseHue + between(-12, 12),
        gs * between(0.7, 1.2),
        groundLight * dark * (0.55 + 0.45 * depth),
      ),
      haze: far * between(0.55, 0.85),
      falloff: 2 + 4 * depth,
      rim: (mood === 'night' ? 0.12 : 0.35) * between(0.6, 1.2),
    });
  }

  return {
    noise: makeNoise(rand),
    skyTop,
    skyHorizon,
    fog,
    sunColor,
    sunX: between(0.12, 0.88),
    sunY: horizon * between(0.3, 0.8),
    sunRadius: mood === 'night' ? between(0.025, 0.04) : between(0.035, 0.07),
    sunGlow: mood === 'night' ? 0.06 : mood === 'dusk' ? 0.5 : 0.25,
    sunFalloff: between(25, 60),
    sunSide: rand() < 0.5 ? 1 : -1,
    cloudLit: mood === 'night' ? hsl(220, 0.2, 0.25) : mixRgb(skyHorizon, [1, 1, 1], 0.6),
    cloudShadow: mixRgb(mixRgb(skyTop, skyHorizon, 0.5), [0, 0, 0], 0.2),
    cloudCover: between(0.38, 0.62),
    cloudScale: between(1.6, 3.2),
    wind: between(0.004, 0.012) * (rand() < 0.5 ? -1 : 1),
    drift: between(0.004, 0.008) * (rand() < 0.5 ? -1 : 1),
    horizon,
    layers,
    ...(water && {
      water: {
        level: horizon + between(0.12, 0.22) * (1 - horizon),
        color: mixRgb(skyTop, [0.05, 0.12, 0.16], 0.5),
      },
    }),
    stars: mood === 'night' || (mood === 'alien' && rand() < 0.5),
    starSeed: Math.floor(rand() * 0x7fff_ffff),
  };
}

function hslToRgb(h: number, s: number, l: number): RGB {
  const hue = (((h % 360) + 360) % 360) / 60;
  const sat = clamp01(s);
  const c = (1 - Math.abs(2 * l - 1)) * sat;
  const x = c * (1 - Math.abs((hue % 2) - 1));
  const m = l - c / 2;
  const [r, g, b] =
    hue < 1
      ? [c, x, 0]
      : hue < 2
        ? [x, c, 0]
        : hue < 3
          ? [0, c, x]
          : hue < 4
            ? [0, x, c]
            : hue < 5
              ? [x, 0, c]
              : [c, 0, x];
  return [r + m, g + m, b + m];
}

const clamp01 = (x: number): number => Math.min(1, Math.max(0, x));

const mixRgb = (a: RGB, b: RGB, k: number): RGB => [
  a[0] + (b[0] - a[0]) * k,
  a[1] + (b[1] - a[1]) * k,
  a[2] + (b[2] - a[2]) * k,
];

// ---- randomness and noise -------------------------------------------------------------------------------

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** A deterministic stream of numbers in [0, 1) named by `key`, the same on every engine. */
export const seededRandom = (key: string): (() => number) => prng(digest(key));

/** sfc32: a small, fast PRNG with integer state, seeded from 128 bits of a hash. */
function prng(key: Buffer): () => number {
  let a = key.readUInt32LE(0);
  let b = key.readUInt32LE(4);
  let c = key.readUInt32LE(8);
  let d = key.readUInt32LE(12);
  return () => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
}

interface Noise {
  /** A permutation of 0..255, repeated so lookups need no wrap. */
  perm: Uint8Array;
  values: Float64Array;
}

function makeNoise(rand: () => number): Noise {
  const perm = new Uint8Array(512);
  for (let i = 0; i < 256; i++) perm[i] = i;
  for (let i = 255; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const tmp = perm[i]!;
    perm[i] = perm[j]!;
    perm[j] = tmp;
  }
  perm.copyWithin(256, 0, 256);
  const values = new Float64Array(256);
  for (let i = 0; i < 256; i++) values[i] = rand();
  return { perm, values };
}

/** Smooth value noise in [0, 1). */
function value2(n: Noise, x: number, y: number): number {
  const xf = Math.floor(x);
  const yf = Math.floor(y);
  const tx = x - xf;
  const ty = y - yf;
  const sx = tx * tx * (3 - 2 * tx);
  const sy = ty * ty * (3 - 2 * ty);
  const p = n.perm;
  const v = n.values;
  const xi = xf & 255;
  const yi = yf & 255;
  const a = p[xi]! + yi;
  const b = p[xi + 1]! + yi;
  const v00 = v[p[a]!]!;
  const v10 = v[p[b]!]!;
  const v01 = v[p[a + 1]!]!;
  const v11 = v[p[b + 1]!]!;
  const top = v00 + (v10 - v00) * sx;
  const bottom = v01 + (v11 - v01) * sx;
  return top + (bottom - top) * sy;
}

function value1(n: Noise, x: number): number {
  const xf = Math.floor(x);
  const t = x - xf;
  const s = t * t * (3 - 2 * t);
  const xi = xf & 255;
  const v0 = n.values[n.perm[xi]!]!;
  const v1 = n.values[n.perm[xi + 1]!]!;
  return v0 + (v1 - v0) * s;
}

/** Fractal sums, normalised back to [0, 1). The lacunarity is not 2 so octaves do not share lattice lines. */
function fbm2(n: Noise, x: number, y: number, octaves: number, gain: number): number {
  let sum = 0;
  let amp = 1;
  let norm = 0;
  for (let o = 0; o < octaves; o++) {
    sum += amp * value2(n, x, y);
    norm += amp;
    amp *= gain;
    x = x * 2.03 + 31.7;
    y = y * 2.03 + 11.3;
  }
  return sum / norm;
}

function fbm1(n: Noise, x: number, octaves: number): number {
  let sum = 0;
  let amp = 1;
  let norm = 0;
  for (let o = 0; o < octaves; o++) {
    sum += amp * value1(n, x);
    norm += amp;
    amp *= 0.5;
    x = x * 2.07 + 19.1;
  }
  return sum / norm;
}

/** A sparse, fixed star field: an integer hash of the sky position. */
function starAt(x: number, y: number, seed: number): boolean {
  let h = Math.imul(x, 0x27d4eb2d) ^ Math.imul(y, 0x165667b1) ^ seed;
  h = Math.imul(h ^ (h >>> 15), 0x85ebca6b);
  h ^= h >>> 13;
  return (h >>> 0) % 1000 < 2;
}
