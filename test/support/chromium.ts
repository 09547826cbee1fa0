/**
 * Headless Chromium (Debian's `chromium` package) for tests that look at a page as a browser
 * renders it: a screenshot as PNG bytes, or the DOM after load, and `pngFacts` to tell a real
 * render from a blank or broken one without any image library.
 *
 * Each run gets a fresh profile, config and cache directory under the OS temp dir, removed
 * afterwards, so runs never share state nor write into $HOME. A run that outlives its timeout is
 * killed with its whole process group (the browser, its zygote and renderers).
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inflateSync } from "node:zlib";

/**
 * The flags every run needs here: headless; no sandbox (the tests run as root, and as root
 * Chromium exits 1 without it: "Running as root without --no-sandbox is not supported"); no GPU,
 * so every machine renders in software alike (Debian's launcher adds --enable-gpu-rasterization);
 * no scrollbars in screenshots.
 */
const BASE_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"];
const DEFAULT_TIMEOUT_MS = 30_000;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/**
 * Runs `chromium` with the base flags and `args(dir)`, `dir` a directory of its own that `use`
 * may read before it is removed.
 */
async function runChromium<T>(
  args: (dir: string) => string[],
  timeoutMs: number,
  use: (run: Run, dir: string) => T,
): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), "utilitarian-chromium-"));
  try {
    const run = await new Promise<Run>((resolve, reject) => {
      const child = spawn("chromium", [...BASE_FLAGS, `--user-data-dir=${join(dir, "profile")}`, ...args(dir)], {
        // Crash reports go to $XDG_CONFIG_HOME/chromium and caches to $XDG_CACHE_HOME even with --user-data-dir.
        env: { ...process.env, XDG_CONFIG_HOME: join(dir, "config"), XDG_CACHE_HOME: join(dir, "cache") },
        stdio: ["ignore", "pipe", "pipe"],
        detached: true, // its own process group, so a timeout kills every process it started
      });
      let stdout = "";
      let stderr = "";
      let timedOut = false;
      child.stdout.on("data", (d) => (stdout += d));
      child.stderr.on("data", (d) => (stderr += d));
      const timer = setTimeout(() => {
        timedOut = true;
        try {
          process.kill(-child.pid!, "SIGKILL");
        } catch {
          // already gone
        }
      }, timeoutMs);
      child.on("error", (e) =>
        reject(new Error(`chromium could not be started (${e.message}): install Debian's chromium package`)),
      );
      child.on("close", (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr, timedOut });
      });
    });
    return use(run, dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Chromium's stderr for an error message, without its D-Bus complaints (there is no D-Bus in a
 * container or CI machine; they say nothing about the page) and the Debian launcher's harmless
 * `[: ...: unexpected operator` when /dev/shm is mounted twice.
 */
function stderrForError(stderr: string): string {
  const lines = stderr.split("\n").filter((l) => l.trim() && !/dbus|unexpected operator/i.test(l));
  return lines.length ? lines.join("\n") : "(nothing on stderr)";
}

function failure(what: string, url: string, run: Run, timeoutMs: number): Error {
  const how = run.timedOut ? `timed out after ${timeoutMs} ms` : `exited ${run.code}`;
  return new Error(`chromium ${what} of ${url} failed: ${how}; its stderr:\n${stderrForError(run.stderr)}`);
}

export interface ScreenshotOptions {
  /** An http(s):// or file:// URL (a local SVG too), or about:blank. */
  url: string;
  width: number;
  height: number;
  /** Where the PNG is kept; when absent, only the returned bytes remain. */
  outFile?: string;
  timeoutMs?: number;
}

/**
 * A screenshot of `url` in a window of `width`×`height`, as PNG bytes. Throws with Chromium's
 * stderr when no PNG was written: Chromium exits 0 when the page fails to load (a refused
 * connection, an unsafe port), saying only `Page load failed` on stderr.
 */
export function chromiumScreenshot(options: ScreenshotOptions): Promise<Buffer> {
  const { url, width, height, outFile } = options;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const file = (dir: string) => outFile ?? join(dir, "screenshot.png");
  // An earlier run's picture must not pass for this one's.
  if (outFile) rmSync(outFile, { force: true });
  return runChromium(
    (dir) => [`--window-size=${width},${height}`, `--screenshot=${file(dir)}`, url],
    timeoutMs,
    (run, dir) => {
      let png: Buffer | undefined;
      try {
        png = readFileSync(file(dir));
      } catch {
        png = undefined;
      }
      if (run.code !== 0 || run.timedOut || !png?.length) throw failure("screenshot", url, run, timeoutMs);
      return png;
    },
  );
}

/** The page's DOM after load, serialized (`--dump-dom`); see `domText` for its text alone. */
export function chromiumDom(url: string, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<string> {
  return runChromium(
    () => ["--dump-dom", url],
    timeoutMs,
    (run) => {
      if (run.code !== 0 || run.timedOut || !run.stdout.trim()) throw failure("--dump-dom", url, run, timeoutMs);
      return run.stdout;
    },
  );
}

const ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', "#39": "'", nbsp: " " };

/** The text of serialized HTML, as a reader sees it: tags, head and scripts dropped, entities decoded, spaces collapsed. */
export function domText(html: string): string {
  return html
    .replace(/<(head|script|style)[\s\S]*?<\/\1>/gi, " ")
    .replace(/<[^>]*>/g, " ")
    .replace(/&(amp|lt|gt|quot|#39|nbsp);/g, (_, name: string) => ENTITIES[name])
    .replace(/\s+/g, " ")
    .trim();
}

export interface PngFacts {
  width: number;
  height: number;
  bitDepth: number;
  /** PNG colour type: 2 RGB, 6 RGBA (the two decoded); 0 grey, 3 palette, 4 grey+alpha. */
  colourType: number;
  interlaced: boolean;
  /** Present only when the pixels were decoded (8-bit RGB or RGBA, not interlaced). */
  pixels?: {
    /** Channels of the pixel at (x, y): [r, g, b] or [r, g, b, a]. */
    at(x: number, y: number): number[];
    /** The top-left pixel, taken as the background. */
    background: number[];
    /** How many different pixel values the image has. */
    distinctColours: number;
    /** The fraction of pixels that differ from the background, 0..1. */
    nonBackgroundFraction: number;
  };
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/**
 * Reads a PNG: its size and format from IHDR and, for 8-bit RGB/RGBA without interlacing (what
 * Chromium writes), its pixels: the IDAT chunks inflated and each scanline unfiltered (None, Sub,
 * Up, Average, Paeth). Throws on anything that is not a well-formed PNG.
 */
export function pngFacts(png: Buffer): PngFacts {
  if (png.length < 8 || !png.subarray(0, 8).equals(PNG_SIGNATURE)) throw new Error("not a PNG: wrong signature");
  let header: PngFacts | undefined;
  const idat: Buffer[] = [];
  let ended = false;
  for (let offset = 8; offset < png.length && !ended;) {
    if (offset + 12 > png.length) throw new Error(`PNG truncated in a chunk header at byte ${offset}`);
    const length = png.readUInt32BE(offset);
    const type = png.toString("latin1", offset + 4, offset + 8);
    if (offset + 12 + length > png.length) throw new Error(`PNG truncated in its ${type} chunk`);
    const data = png.subarray(offset + 8, offset + 8 + length);
    if (type === "IHDR") {
      header = {
        width: data.readUInt32BE(0),
        height: data.readUInt32BE(4),
        bitDepth: data[8],
        colourType: data[9],
        interlaced: data[12] === 1,
      };
    } else if (type === "IDAT") idat.push(data);
    else if (type === "IEND") ended = true;
    offset += 12 + length;
  }
  if (!ended) throw new Error("PNG truncated: no IEND chunk");
  if (!header) throw new Error("PNG without an IHDR chunk");
  if (!idat.length) throw new Error("PNG without image data (no IDAT chunk)");
  const channels = { 2: 3, 6: 4 }[header.colourType];
  if (header.bitDepth !== 8 || !channels || header.interlaced) return header;
  const raw = unfilter(inflateSync(Buffer.concat(idat)), header.width, header.height, channels);
  return { ...header, pixels: pixelFacts(raw, header.width, header.height, channels) };
}

/** The scanlines' filters undone: `height` rows of `width * channels` bytes, each after its filter byte. */
function unfilter(data: Buffer, width: number, height: number, channels: number): Buffer {
  const stride = width * channels;
  if (data.length < height * (stride + 1)) throw new Error(`PNG image data too short for ${width}x${height}`);
  const out = Buffer.alloc(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = data[y * (stride + 1)];
    const line = data.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const row = y * stride;
    for (let i = 0; i < stride; i++) {
      const left = i >= channels ? out[row + i - channels] : 0;
      const up = y > 0 ? out[row - stride + i] : 0;
      const upLeft = y > 0 && i >= channels ? out[row - stride + i - channels] : 0;
      let predictor: number;
      if (filter === 0) predictor = 0;
      else if (filter === 1) predictor = left;
      else if (filter === 2) predictor = up;
      else if (filter === 3) predictor = (left + up) >> 1;
      else if (filter === 4) predictor = paeth(left, up, upLeft);
      else throw new Error(`PNG scanline ${y} has unknown filter type ${filter}`);
      out[row + i] = (line[i] + predictor) & 0xff;
    }
  }
  return out;
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const [pa, pb, pc] = [Math.abs(p - a), Math.abs(p - b), Math.abs(p - c)];
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

function pixelFacts(raw: Buffer, width: number, height: number, channels: number): NonNullable<PngFacts["pixels"]> {
  const at = (x: number, y: number) => [...raw.subarray((y * width + x) * channels, (y * width + x + 1) * channels)];
  const key = (i: number) => raw.readUIntBE(i, channels);
  const background = key(0);
  const colours = new Set<number>();
  let different = 0;
  for (let i = 0; i < raw.length; i += channels) {
    const k = key(i);
    colours.add(k);
    if (k !== background) different++;
  }
  return {
    at,
    background: at(0, 0),
    distinctColours: colours.size,
    nonBackgroundFraction: different / (width * height),
  };
}

export interface RenderExpectation {
  width: number;
  height: number;
  /** Below this fraction of non-background pixels the render is blank; default 0.5%. */
  minNonBackground?: number;
  /** Fewer distinct colours than this and it is blank or a flat box; default 3. */
  minColours?: number;
}

/**
 * What is wrong with a render, or [] when it looks like a real one: the size asked for, its
 * pixels decodable, enough pixels that are not the background, more than a couple of colours
 * (text and anti-aliasing give many). A blank page, an empty SVG or a flat error box fails.
 */
export function renderProblems(png: Buffer, expected: RenderExpectation): string[] {
  const facts = pngFacts(png);
  const problems: string[] = [];
  if (facts.width !== expected.width || facts.height !== expected.height)
    problems.push(`size ${facts.width}x${facts.height}, expected ${expected.width}x${expected.height}`);
  const pixels = facts.pixels;
  if (!pixels)
    return [...problems, `pixels not decodable (bit depth ${facts.bitDepth}, colour type ${facts.colourType})`];
  const minFraction = expected.minNonBackground ?? 0.005;
  const minColours = expected.minColours ?? 3;
  if (pixels.nonBackgroundFraction < minFraction)
    problems.push(
      `blank: ${(pixels.nonBackgroundFraction * 100).toFixed(2)}% of pixels differ from the background, expected at least ${minFraction * 100}%`,
    );
  if (pixels.distinctColours < minColours)
    problems.push(`blank: ${pixels.distinctColours} distinct colours, expected at least ${minColours}`);
  return problems;
}
