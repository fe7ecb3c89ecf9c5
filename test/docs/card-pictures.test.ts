/**
 * The README's Teams pictures (docs/teams/*.png) are current: every sample view renders to the
 * card whose sha256 docs/teams/cards.json recorded when the pictures were drawn, and every picture
 * is there, a PNG of the recorded size. A renderer change needs `npm run docs:cards` (Chromium);
 * this test does not draw anything.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import {
  cardHash,
  PICTURE_DIR,
  PICTURE_INDEX,
  type PictureIndex,
  renderSample,
  SAMPLE_NAMES,
  SAMPLES,
} from './sample-views.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const REDRAW = 'Run `npm run docs:cards` to draw the pictures again (needs Chromium), and commit them.';

function readIndex(): PictureIndex {
  const path = join(ROOT, PICTURE_INDEX);
  if (!existsSync(path)) throw new Error(`${PICTURE_INDEX} is missing. ${REDRAW}`);
  return JSON.parse(readFileSync(path, 'utf8')) as PictureIndex;
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Width and height from the IHDR chunk (pngjs reads, and checks, the whole file). */
function pngSize(file: string): { width: number; height: number } {
  const data = readFileSync(file);
  if (!data.subarray(0, 8).equals(PNG_SIGNATURE)) throw new Error(`${file} is not a PNG. ${REDRAW}`);
  const { width, height } = PNG.sync.read(data);
  return { width, height };
}

describe('Teams card pictures (docs/teams)', () => {
  const index = readIndex();

  it('has a picture for every sample view, and none for a sample that is gone', () => {
    expect(
      Object.keys(index).sort(),
      `${PICTURE_INDEX} lists other pictures than the samples. ${REDRAW}`,
    ).toEqual([...SAMPLE_NAMES].sort());
  });

  for (const name of SAMPLE_NAMES) {
    describe(name, () => {
      const rendered = renderSample(SAMPLES[name]);

      it('shows the card the renderer produces now', () => {
        const recorded = index[name];
        expect(recorded, `${name} is not in ${PICTURE_INDEX}. ${REDRAW}`).toBeDefined();
        expect(
          cardHash(rendered.card),
          `The Teams card of ${name} changed since docs/teams/${name}.png was drawn. ${REDRAW}`,
        ).toBe(recorded?.sha256);
        expect(rendered.title, `The dialog title of ${name} changed. ${REDRAW}`).toBe(recorded?.title);
      });

      it('is a PNG of the recorded size', () => {
        const file = join(ROOT, PICTURE_DIR, `${name}.png`);
        expect(existsSync(file), `docs/teams/${name}.png is missing. ${REDRAW}`).toBe(true);
        const recorded = index[name];
        expect(
          pngSize(file),
          `docs/teams/${name}.png is not the picture ${PICTURE_INDEX} recorded. ${REDRAW}`,
        ).toEqual({
          width: recorded?.width,
          height: recorded?.height,
        });
      });
    });
  }
});
