// Same-character evaluation pairs for reference coloring (docs/reference_coloring.md).
//
// For each seed, DiceBear "Adventurer" (Lisa Wischofsky, CC BY 4.0; @dicebear/collection@9, code MIT) renders a
// *reference* (option set A) and a *target* (option set B) of the same character: the face parts and accessories
// (eyes, eyebrows, mouth, glasses, earrings, features) differ, while base, hair, hair color and skin color stay those
// of the seed (DiceBear draws every choice from one PRNG that advances once per choice whatever the option list, so
// pinning a part changes nothing else). A quarter of the pairs also move the target a little (scale 90-110 %,
// translate ±6 %). Each image is written as `<id>_ref_color.png` / `<id>_ref_line.png` / `<id>_color.png` /
// `<id>_line.png`; the lineart is the same drawing with every colored fill set to white and every black fill kept
// black (as /work/shared/data/adventurer was made), so it is pixel-aligned.
//
// Usage (outside the repository; never commit node_modules):
//   mkdir /tmp/dicebear && cd /tmp/dicebear && npm install @dicebear/core@9 @dicebear/collection@9 @resvg/resvg-js
//   NODE_PATH=/tmp/dicebear/node_modules node --experimental-default-type=module \
//     scripts/make_reference_pairs.mjs OUT_DIR SPLIT COUNT [SIZE]
// SPLIT is `val` or `test` (seeds `refpair-<split>-<i>`, none of them a training seed `train-*`); SIZE defaults to 128.
import { createRequire } from 'node:module';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const require = createRequire(join(process.env.NODE_PATH || process.cwd(), 'x.js'));
const { createAvatar } = require('@dicebear/core');
const { adventurer } = require('@dicebear/collection');
const { Resvg } = require('@resvg/resvg-js');

const [outDir, split, countText, sizeText] = process.argv.slice(2);
if (!outDir || !['val', 'test'].includes(split) || !(Number(countText) > 0)) {
  console.error('usage: make_reference_pairs.mjs OUT_DIR val|test COUNT [SIZE]');
  process.exit(2);
}
const size = Number(sizeText || 128);
const P = adventurer.schema.properties;

// A small PRNG of our own for the option choices (mulberry32), seeded by the pair's index and split.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const pick = (r, values) => values[Math.floor(r() * values.length)];

function optionSet(r) {
  return {
    eyes: [pick(r, P.eyes.items.enum)],
    eyebrows: [pick(r, P.eyebrows.items.enum)],
    mouth: [pick(r, P.mouth.items.enum)],
    glasses: [pick(r, P.glasses.items.enum)],
    glassesProbability: r() < 0.25 ? 100 : 0,
    earrings: [pick(r, P.earrings.items.enum)],
    earringsProbability: r() < 0.25 ? 100 : 0,
    features: [pick(r, P.features.items.enum)],
    featuresProbability: r() < 0.2 ? 100 : 0,
  };
}

function lineartSvg(svg) {
  // Every colored fill → white, black fills (the ink) stay black; strokes (none in Adventurer) → black.
  return svg
    .replace(/fill="(#[0-9a-fA-F]{3,8})"/g, (m, c) => (/^#0{3}(0{3})?$/.test(c) ? m : 'fill="#fff"'))
    .replace(/stroke="(#[0-9a-fA-F]{3,8})"/g, 'stroke="#000"');
}

function png(svg) {
  return new Resvg(svg, { background: 'white', fitTo: { mode: 'width', value: size } }).render().asPng();
}

mkdirSync(outDir, { recursive: true });
const rows = ['id,split,seed,moved,reference_options,target_options'];
for (let i = 0; i < Number(countText); i++) {
  const seed = `refpair-${split}-${i}`;
  const r = rng((split === 'val' ? 1000003 : 2000003) + i * 7919);
  const a = optionSet(r);
  let b = optionSet(r);
  for (let tries = 0; JSON.stringify(a) === JSON.stringify(b) && tries < 10; tries++) b = optionSet(r);
  const moved = r() < 0.25;
  const move = moved
    ? { scale: 90 + Math.floor(r() * 21), translateX: Math.floor(r() * 13) - 6, translateY: Math.floor(r() * 13) - 6 }
    : {};
  const id = `${split}_${String(i).padStart(3, '0')}`;
  const images = { ref: createAvatar(adventurer, { seed, ...a }), '': createAvatar(adventurer, { seed, ...b, ...move }) };
  for (const [kind, avatar] of Object.entries(images)) {
    const svg = avatar.toString();
    const stem = kind ? `${id}_${kind}` : id;
    writeFileSync(join(outDir, `${stem}_color.png`), png(svg));
    writeFileSync(join(outDir, `${stem}_line.png`), png(lineartSvg(svg)));
  }
  const brief = (o) => Object.entries(o).map(([k, v]) => `${k}=${Array.isArray(v) ? v[0] : v}`).join(' ');
  rows.push(`${id},${split},${seed},${moved ? brief(move) : ''},${brief(a)},${brief({ ...b })}`);
}
writeFileSync(join(outDir, `index_${split}.csv`), rows.join('\n') + '\n');
console.log(`wrote ${Number(countText)} pairs to ${outDir}`);
