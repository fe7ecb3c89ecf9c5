/**
 * Draws the README's Teams pictures (docs/teams/<name>.png) from the real card JSON: every sample
 * of test/docs/sample-views.ts goes through our renderer (adapters/chat/teams/render.ts), and the
 * card is drawn by Microsoft's own Adaptive Cards renderer (the `adaptivecards` UMD bundle, with
 * markdown-it for the markdown Teams renders) in headless Chromium, with a Teams-like host config.
 * Also writes docs/teams/cards.json (the sha256 of each card's JSON and the picture's size), which
 * test/docs/card-pictures.test.ts compares with what the renderer produces now.
 *
 *   npm run docs:cards        (needs Chromium: apt-get install -y chromium fonts-noto-color-emoji)
 *
 * CHROMIUM_PATH overrides /usr/bin/chromium. Fails when the renderer reports a parse or validation
 * warning for a card, or when the page logs an error.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { PNG } from 'pngjs';
import {
  cardHash,
  PICTURE_DIR,
  PICTURE_INDEX,
  type PictureRecord,
  type RenderedSample,
  renderSample,
  SAMPLE_NAMES,
  SAMPLES,
} from './sample-views.js';

const require = createRequire(import.meta.url);

/** The repository root: this file runs as dist/test/docs/render-card-pictures.js. */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const DEVICE_SCALE_FACTOR = 2;
/** The card's width in CSS pixels: a Teams message card, a Teams dialog (task module). */
const WIDTH = { card: 420, dialog: 520 } as const;

/** Teams' light theme (Fluent UI): text, brand and status colors. */
const COLORS = {
  text: '#242424',
  subtle: '#616161',
  brand: '#5B5FC7',
  brandHover: '#4F52B2',
  good: '#237B4B',
  warning: '#835C00',
  attention: '#C4314B',
  separator: '#E0E0E0',
  stroke: '#D1D1D1',
  canvas: '#F5F5F5',
};

const FONT_FAMILY =
  "'Segoe UI', 'Segoe UI Web (West European)', -apple-system, BlinkMacSystemFont, Roboto, 'Open Sans', 'Helvetica Neue', sans-serif, 'Noto Color Emoji'";

const color = (value: string, subtle = value) => ({ default: value, subtle });

/** A Teams-like host config: light theme, Teams' sizes and colors, Adaptive Cards 1.5. */
const HOST_CONFIG = {
  supportsInteractivity: true,
  hostCapabilities: { capabilities: null },
  choiceSetInputValueSeparator: ',',
  fontTypes: {
    default: {
      fontFamily: FONT_FAMILY,
      fontSizes: { small: 12, default: 14, medium: 18, large: 24, extraLarge: 32 },
      fontWeights: { lighter: 300, default: 400, bolder: 600 },
    },
    monospace: {
      fontFamily: "Consolas, 'Courier New', 'DejaVu Sans Mono', monospace",
      fontSizes: { small: 12, default: 14, medium: 18, large: 24, extraLarge: 32 },
      fontWeights: { lighter: 300, default: 400, bolder: 600 },
    },
  },
  lineHeights: { small: 16, default: 20, medium: 24, large: 32, extraLarge: 40 },
  spacing: { small: 4, default: 8, medium: 16, large: 24, extraLarge: 32, padding: 16 },
  separator: { lineThickness: 1, lineColor: COLORS.separator },
  imageSizes: { small: 32, medium: 52, large: 100 },
  containerStyles: {
    default: {
      backgroundColor: '#FFFFFF',
      foregroundColors: {
        default: color(COLORS.text, COLORS.subtle),
        dark: color('#242424', '#616161'),
        light: color('#FFFFFF', '#F5F5F5'),
        accent: color(COLORS.brand, '#7F85F5'),
        good: color(COLORS.good, '#5EA87E'),
        warning: color(COLORS.warning, '#A67C00'),
        attention: color(COLORS.attention, '#D26A7D'),
      },
    },
    emphasis: {
      backgroundColor: COLORS.canvas,
      foregroundColors: {
        default: color(COLORS.text, COLORS.subtle),
        dark: color('#242424', '#616161'),
        light: color('#FFFFFF', '#F5F5F5'),
        accent: color(COLORS.brand, '#7F85F5'),
        good: color(COLORS.good, '#5EA87E'),
        warning: color(COLORS.warning, '#A67C00'),
        attention: color(COLORS.attention, '#D26A7D'),
      },
    },
  },
  actions: {
    maxActions: 6,
    spacing: 'default',
    buttonSpacing: 8,
    showCard: { actionMode: 'inline', inlineTopMargin: 16 },
    actionsOrientation: 'horizontal',
    actionAlignment: 'left',
    iconPlacement: 'leftOfTitle',
  },
  adaptiveCard: { allowCustomStyle: true },
  factSet: {
    title: {
      color: 'default',
      size: 'default',
      isSubtle: false,
      weight: 'bolder',
      wrap: true,
      maxWidth: 150,
    },
    value: { color: 'default', size: 'default', isSubtle: false, weight: 'default', wrap: true },
    spacing: 12,
  },
  inputs: {
    label: {
      inputSpacing: 'small',
      requiredInputs: { weight: 'bolder', suffix: ' *', suffixColor: 'attention' },
      optionalInputs: { weight: 'bolder' },
    },
    errorMessage: { size: 'small', color: 'attention', spacing: 'small' },
  },
};

/** Teams' look for what the host config does not reach: buttons, inputs, links, the frames. */
const TEAMS_CSS = `
  html, body { margin: 0; background: ${COLORS.canvas}; }
  body { font-family: ${FONT_FAMILY}; color: ${COLORS.text}; -webkit-font-smoothing: antialiased; }
  #root { display: inline-block; }
  .shot { display: inline-block; padding: 16px; background: ${COLORS.canvas}; }
  .shot-dialog { padding: 24px; background: #E6E6E6; }
  .card-frame { background: #FFFFFF; border: 1px solid ${COLORS.separator}; border-radius: 6px;
    box-shadow: 0 1px 2px rgba(0, 0, 0, 0.08); overflow: hidden; }
  .dialog { background: #FFFFFF; border-radius: 8px; overflow: hidden;
    box-shadow: 0 6.4px 14.4px rgba(0, 0, 0, 0.13), 0 1.2px 3.6px rgba(0, 0, 0, 0.11); }
  .dialog-header { display: flex; align-items: center; justify-content: space-between;
    padding: 20px 24px 4px 24px; }
  .dialog-title { font-size: 18px; font-weight: 700; line-height: 24px; }
  .dialog-close { font-size: 16px; color: ${COLORS.subtle}; }
  .dialog .ac-adaptiveCard { padding-left: 24px !important; padding-right: 24px !important;
    padding-bottom: 24px !important; }
  .ac-adaptiveCard:focus { outline: none; }
  .ac-textBlock p { margin: 0; }
  a.ac-anchor, a.ac-anchor:link, a.ac-anchor:visited { color: ${COLORS.brand}; text-decoration: none; }
  .ac-pushButton { font-family: ${FONT_FAMILY}; font-size: 14px; font-weight: 600; height: 32px;
    padding: 0 12px; border-radius: 4px; background: #FFFFFF; color: ${COLORS.text};
    border: 1px solid ${COLORS.stroke}; }
  .ac-pushButton.style-positive { background: ${COLORS.brand}; border-color: ${COLORS.brand}; color: #FFFFFF; }
  .ac-pushButton.style-destructive { background: #FFFFFF; border-color: ${COLORS.stroke};
    color: ${COLORS.attention}; }
  .ac-input { font-family: ${FONT_FAMILY}; font-size: 14px; color: ${COLORS.text}; }
  .ac-input.ac-textInput, .ac-input.ac-multichoiceInput.ac-choiceSetInput-compact {
    box-sizing: border-box; height: 32px; padding: 0 10px; border: 1px solid ${COLORS.stroke};
    border-bottom-color: #616161; border-radius: 4px; background: #FFFFFF; }
  .ac-input::placeholder { color: #707070; }
`;

/** Runs in the page: draws one card into #root and reports what the renderer complained about. */
const PAGE_SCRIPT = `
  window.renderCard = function (args) {
    var AC = window.AdaptiveCards;
    var root = document.getElementById('root');
    root.replaceChildren();
    var shot = document.createElement('div');
    shot.id = 'shot';
    shot.className = 'shot ' + (args.dialog ? 'shot-dialog' : 'shot-card');
    var frame = document.createElement('div');
    frame.className = args.dialog ? 'dialog' : 'card-frame';
    frame.style.width = args.width + 'px';
    if (args.dialog) {
      var header = document.createElement('div');
      header.className = 'dialog-header';
      var title = document.createElement('div');
      title.className = 'dialog-title';
      title.textContent = args.title;
      var close = document.createElement('div');
      close.className = 'dialog-close';
      close.textContent = '\\u2715';
      header.append(title, close);
      frame.append(header);
    }
    var model = new AC.AdaptiveCard();
    model.hostConfig = new AC.HostConfig(args.hostConfig);
    var context = new AC.SerializationContext(AC.Versions.v1_5);
    model.parse(args.card, context);
    var warnings = [];
    for (var i = 0; i < context.eventCount; i++) warnings.push(context.getEventAt(i).message);
    model.validateProperties().validationEvents.forEach(function (e) { warnings.push(e.message); });
    var element = model.render();
    if (!element) warnings.push('render() returned nothing');
    else frame.append(element);
    shot.append(frame);
    root.append(shot);
    // Text the renderer cut off (an ellipsis, or content wider than its box).
    var clipped = [];
    shot.querySelectorAll('*').forEach(function (node) {
      if (node.scrollWidth > node.clientWidth + 1 && getComputedStyle(node).overflowX !== 'visible' &&
          node.textContent.trim())
        clipped.push((node.closest('[class]') || node).className + ': ' + node.textContent.trim().slice(0, 80));
    });
    return { warnings: warnings, clipped: clipped };
  };
`;

interface PageResult {
  readonly warnings: readonly string[];
  readonly clipped: readonly string[];
}

function asset(specifier: string): string {
  const path = require.resolve(specifier);
  if (!existsSync(path)) throw new Error(`${specifier} is missing: run npm install.`);
  return path;
}

async function main(): Promise<void> {
  if (!existsSync(join(ROOT, 'package.json'))) throw new Error(`Not the repository root: ${ROOT}`);
  if (!existsSync(CHROMIUM))
    throw new Error(
      `No Chromium at ${CHROMIUM}: apt-get install -y chromium fonts-noto-color-emoji (or set CHROMIUM_PATH).`,
    );
  const outDir = join(ROOT, PICTURE_DIR);
  await mkdir(outDir, { recursive: true });

  const userDataDir = await mkdtemp(join(tmpdir(), 'cloudpi-card-pictures-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    args: CHROMIUM_ARGS,
    headless: true,
    deviceScaleFactor: DEVICE_SCALE_FACTOR,
    viewport: { width: 1000, height: 3000 },
    colorScheme: 'light',
    offline: true,
  });
  const index: Record<string, PictureRecord> = {};
  const failures: string[] = [];
  try {
    // Everything the page needs is inlined: nothing may be fetched.
    await context.route('**/*', (route) =>
      route.request().url().startsWith('data:') ? route.continue() : route.abort(),
    );
    const page = context.pages()[0] ?? (await context.newPage());
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error' || message.type() === 'warning') pageErrors.push(message.text());
    });
    await page.setContent(
      '<!doctype html><html><head><meta charset="utf-8"></head><body><div id="root"></div></body></html>',
    );
    await page.addStyleTag({
      content: await readFile(asset('adaptivecards/dist/adaptivecards.css'), 'utf8'),
    });
    await page.addStyleTag({ content: TEAMS_CSS });
    await page.addScriptTag({ content: await readFile(asset('markdown-it/browser'), 'utf8') });
    await page.addScriptTag({
      content: await readFile(asset('adaptivecards/dist/adaptivecards.min.js'), 'utf8'),
    });
    await page.addScriptTag({ content: PAGE_SCRIPT });

    for (const name of SAMPLE_NAMES) {
      const rendered: RenderedSample = renderSample(SAMPLES[name]);
      const dialog = rendered.surface === 'dialog';
      pageErrors.length = 0;
      const result = await page.evaluate(
        (args) => (globalThis as unknown as { renderCard(a: typeof args): PageResult }).renderCard(args),
        {
          card: rendered.card,
          hostConfig: HOST_CONFIG,
          width: dialog ? WIDTH.dialog : WIDTH.card,
          dialog,
          title: rendered.title ?? '',
        },
      );
      await page.evaluate('document.fonts.ready.then(() => true)');
      for (const w of result.warnings) failures.push(`${name}: the Adaptive Cards renderer reported: ${w}`);
      for (const e of pageErrors) failures.push(`${name}: the page reported: ${e}`);
      for (const c of result.clipped) console.warn(`${name}: clipped text in ${c}`);

      const file = join(outDir, `${name}.png`);
      const png = await page
        .locator('#shot')
        .screenshot({ path: file, animations: 'disabled', caret: 'hide' });
      const { width, height } = PNG.sync.read(png);
      index[name] = {
        sha256: cardHash(rendered.card),
        width,
        height,
        ...(rendered.title !== undefined ? { title: rendered.title } : {}),
      };
      console.log(`${PICTURE_DIR}/${name}.png  ${width}×${height}`);
    }
  } finally {
    await context.close();
    await rm(userDataDir, { recursive: true, force: true });
  }

  if (failures.length) {
    console.error(`\nThe pictures are not right:\n${failures.map((f) => `  - ${f}`).join('\n')}`);
    console.error(`\n${PICTURE_INDEX} was not written.`);
    process.exitCode = 1;
    return;
  }
  // Pictures of samples that are gone.
  for (const file of await readdir(outDir))
    if (file.endsWith('.png') && !(file.slice(0, -4) in index)) await rm(join(outDir, file));
  await writeFile(join(ROOT, PICTURE_INDEX), `${JSON.stringify(index, null, 2)}\n`);
  console.log(`${PICTURE_INDEX} written (${Object.keys(index).length} pictures).`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
