import { deflateSync } from "node:zlib";
import { describe, expect, test } from "vitest";
import { pngFacts, renderProblems } from "../support/chromium";

/**
 * test/support/chromium.ts's PNG reader on PNGs built here, byte by byte: each scanline with
 * another of the five filters, so every unfiltering (and its wrap-around modulo 256) is checked
 * against the pixels that went in. Chromium's own screenshots are read in test/real/chromium.
 */

function crc32(bytes: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(type, "latin1"), data]);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const [pa, pb, pc] = [Math.abs(p - a), Math.abs(p - b), Math.abs(p - c)];
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** An 8-bit PNG of `pixel(x, y)` (3 or 4 channels); row y filtered with filter y % 5, split over two IDATs. */
function buildPng(width: number, height: number, channels: 3 | 4, pixel: (x: number, y: number) => number[]): Buffer {
  const stride = width * channels;
  const raw = Buffer.alloc(height * stride);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) raw.set(pixel(x, y), y * stride + x * channels);
  const filtered = Buffer.alloc(height * (stride + 1));
  for (let y = 0; y < height; y++) {
    const filter = y % 5;
    filtered[y * (stride + 1)] = filter;
    for (let i = 0; i < stride; i++) {
      const value = raw[y * stride + i];
      const left = i >= channels ? raw[y * stride + i - channels] : 0;
      const up = y > 0 ? raw[(y - 1) * stride + i] : 0;
      const upLeft = y > 0 && i >= channels ? raw[(y - 1) * stride + i - channels] : 0;
      const predictor = [0, left, up, (left + up) >> 1, paeth(left, up, upLeft)][filter];
      filtered[y * (stride + 1) + 1 + i] = (value - predictor) & 0xff;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, channels === 3 ? 2 : 6, 0, 0, 0], 8);
  const data = deflateSync(filtered);
  const half = data.length >> 1;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", data.subarray(0, half)),
    chunk("IDAT", data.subarray(half)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

/** Values that change a lot between neighbours, so every filter's predictor wraps around 256. */
const noisy = (x: number, y: number) => [
  (x * 97 + y * 31) & 0xff,
  (x * y * 13 + 200) & 0xff,
  (255 - x * 7 - y * 11) & 0xff,
];
/** White with a red 4x3 box at (2, 1): what a page with one coloured box gives. */
const box = (x: number, y: number) => (x >= 2 && x < 6 && y >= 1 && y < 4 ? [255, 0, 0] : [255, 255, 255]);

describe("pngFacts", () => {
  test("reads the size and format from IHDR", () => {
    const facts = pngFacts(buildPng(7, 5, 3, box));
    expect(facts).toMatchObject({ width: 7, height: 5, bitDepth: 8, colourType: 2, interlaced: false });
  });

  test("decodes every pixel of an RGB PNG whose rows use all five filters", () => {
    const { pixels } = pngFacts(buildPng(13, 10, 3, noisy));
    for (let y = 0; y < 10; y++)
      for (let x = 0; x < 13; x++) expect(pixels!.at(x, y), `(${x}, ${y})`).toEqual(noisy(x, y));
  });

  test("decodes RGBA, the alpha channel included", () => {
    const rgba = (x: number, y: number) => [...noisy(x, y), (x * 50 + y) & 0xff];
    const { pixels } = pngFacts(buildPng(6, 6, 4, rgba));
    for (let y = 0; y < 6; y++) for (let x = 0; x < 6; x++) expect(pixels!.at(x, y)).toEqual(rgba(x, y));
  });

  test("counts colours and the pixels that differ from the top-left one", () => {
    const { pixels } = pngFacts(buildPng(10, 5, 3, box));
    expect(pixels!.background).toEqual([255, 255, 255]);
    expect(pixels!.distinctColours).toBe(2);
    expect(pixels!.nonBackgroundFraction).toBeCloseTo(12 / 50);
    expect(pixels!.at(3, 2)).toEqual([255, 0, 0]);
  });

  test("refuses what is not a PNG, or a truncated one", () => {
    const png = buildPng(4, 4, 3, box);
    expect(() => pngFacts(Buffer.from("<svg/>"))).toThrow(/not a PNG/);
    expect(() => pngFacts(png.subarray(0, 30))).toThrow(/truncated in its IHDR chunk/);
    expect(() => pngFacts(png.subarray(0, png.length - 12))).toThrow(/no IEND/);
    const noData = Buffer.concat([png.subarray(0, 33), png.subarray(png.length - 12)]);
    expect(() => pngFacts(noData)).toThrow(/no IDAT/);
  });

  test("a format it does not decode gives the header alone", () => {
    const png = buildPng(4, 4, 3, box);
    png[8 + 8 + 9] = 3; // IHDR's colour type: palette
    const facts = pngFacts(png);
    expect(facts.colourType).toBe(3);
    expect(facts.pixels).toBeUndefined();
  });
});

describe("renderProblems", () => {
  test("a real render passes: the size asked for, many colours, much of it not background", () => {
    expect(renderProblems(buildPng(13, 10, 3, noisy), { width: 13, height: 10 })).toEqual([]);
  });

  test("a blank picture, a flat box, a wrong size and an undecodable one each fail, saying why", () => {
    const blank = buildPng(20, 10, 3, () => [255, 255, 255]);
    expect(renderProblems(blank, { width: 20, height: 10 })).toEqual([
      "blank: 0.00% of pixels differ from the background, expected at least 0.5%",
      "blank: 1 distinct colours, expected at least 3",
    ]);
    expect(renderProblems(buildPng(10, 5, 3, box), { width: 10, height: 5 })).toEqual([
      "blank: 2 distinct colours, expected at least 3",
    ]);
    expect(renderProblems(buildPng(13, 10, 3, noisy), { width: 1024, height: 768 })).toEqual([
      "size 13x10, expected 1024x768",
    ]);
    const palette = buildPng(4, 4, 3, box);
    palette[8 + 8 + 9] = 3;
    expect(renderProblems(palette, { width: 4, height: 4 })).toEqual([
      "pixels not decodable (bit depth 8, colour type 3)",
    ]);
  });
});
