/**
 * The plugin's pure parts: the plan (every refusal, what is read, the bridge's limits) and the
 * 16-bit range conversion. No host, no bridge.
 */
import { DEFAULT_LIMITS } from '../../../bridge-server/config';
import { fitsLimits } from '../../../core/scale';
import { fullRangeToPhotoshop, photoshopToFullRange } from '../../../plugins/photoshop/src/depth';
import type { DocumentInfo, LayerInfo } from '../../../plugins/photoshop/src/document';
import { planUpscale, scaledOrigin, scaleLabel, UpscaleRequest, validateRequest } from '../../../plugins/photoshop/src/plan';
import { thrown } from '../../helpers';

const limits = { ...DEFAULT_LIMITS };

function layer(id: number, name: string, kind = 'pixel', bounds = { left: 0, top: 0, right: 100, bottom: 80 }, isBackground = false): LayerInfo {
  return { id, name, kind, isBackground, bounds };
}

function docInfo(extra: Partial<DocumentInfo> = {}): DocumentInfo {
  const bg = layer(1, 'Background', 'pixel', { left: 0, top: 0, right: 100, bottom: 80 }, true);
  return { id: 7, title: 'Photo', width: 100, height: 80, resolution: 72, mode: 'RGBColorMode', bits: 'bitDepth8', profile: 'sRGB IEC61966-2.1', activeLayers: [bg], layers: [bg], ...extra };
}

const req = (r: Partial<UpscaleRequest> = {}): UpscaleRequest => ({ target: 'selection', destination: 'new-document', scale: 4, ...r });

describe('depth: Photoshop 0..32768 ↔ the bridge 0..65535', () => {
  test('every Photoshop value survives the round trip exactly, and the ends map to the ends', () => {
    const all = Uint16Array.from({ length: 32769 }, (_, v) => v);
    const full = photoshopToFullRange(all);
    expect(Array.from(fullRangeToPhotoshop(full))).toEqual(Array.from(all));
    expect([full[0], full[16384], full[32768]]).toEqual([0, 32768, 65535]);
    for (let v = 1; v <= 32768; v++) if (full[v] <= full[v - 1]) throw new Error(`not increasing at ${v}`);
  });

  test('every full-range value lands on the nearest Photoshop value', () => {
    const all = Uint16Array.from({ length: 65536 }, (_, v) => v);
    const ps = fullRangeToPhotoshop(all);
    let worst = 0;
    for (let v = 0; v < 65536; v++) worst = Math.max(worst, Math.abs(ps[v] - (v * 32768) / 65535));
    expect(worst).toBeLessThanOrEqual(0.5);
    expect([ps[0], ps[65535]]).toEqual([0, 32768]);
  });
});

describe('validateRequest', () => {
  test('targets, destinations per target, scale range', () => {
    expect(validateRequest({ target: 'document', destination: 'layers', scale: 2, model: 'm' })).toEqual({ target: 'document', destination: 'layers', scale: 2, model: 'm' });
    expect(thrown(() => validateRequest({ target: 'selection', destination: 'layers', scale: 2 })).message).toBe('for the selection, the result can go to: new-document, new-layer');
    expect(thrown(() => validateRequest({ target: 'everything', destination: 'new-document', scale: 2 })).code).toBe('UPB_INVALID_OPTION');
    expect(thrown(() => validateRequest({ target: 'layer', destination: 'new-layer', scale: 17 })).code).toBe('UPB_INVALID_OPTION');
    expect(thrown(() => validateRequest({ target: 'layer', destination: 'new-layer', scale: 0.5 })).code).toBe('UPB_INVALID_OPTION');
  });

  test('a mode replaces the model; creativity only with a mode, 0 to 1; "model" is no mode', () => {
    const base = { target: 'selection', destination: 'new-document', scale: 4 };
    expect(validateRequest({ ...base, mode: 'creative', model: 'm' })).toEqual({ target: 'selection', destination: 'new-document', scale: 4, mode: 'creative' });
    expect(validateRequest({ ...base, mode: 'balanced', creativity: '0.35' })).toEqual({ target: 'selection', destination: 'new-document', scale: 4, mode: 'balanced', creativity: 0.35 });
    expect(validateRequest({ ...base, mode: 'model', model: 'm' })).toEqual({ target: 'selection', destination: 'new-document', scale: 4, model: 'm' });
    expect(validateRequest({ ...base, mode: '', creativity: '' })).toEqual({ target: 'selection', destination: 'new-document', scale: 4 });
    expect(thrown(() => validateRequest({ ...base, mode: 'wild' })).message).toBe('mode must be one of fidelity, balanced, creative, got "wild"');
    expect(thrown(() => validateRequest({ ...base, mode: 'creative', creativity: 1.5 })).message).toBe('creativity must be a number from 0 to 1, got 1.5');
    expect(thrown(() => validateRequest({ ...base, model: 'm', creativity: 0.5 })).message).toBe('creativity must be used with a mode (Fidelity, Balanced or Creative), got 0.5');
  });
});

describe('planUpscale refusals', () => {
  test.each([
    ['no document', undefined, req(), 'UPB_NOTHING_TO_UPSCALE', /no document is open/],
    ['CMYK', docInfo({ mode: 'CMYKColorMode' }), req(), 'UPB_UNSUPPORTED_DOCUMENT', /^CMYK documents can't be upscaled: convert a copy with Image > Mode > RGB Color/],
    ['Lab', docInfo({ mode: 'labColorMode' }), req(), 'UPB_UNSUPPORTED_DOCUMENT', /^Lab documents/],
    ['Indexed', docInfo({ mode: 'indexedColorMode' }), req(), 'UPB_UNSUPPORTED_DOCUMENT', /^Indexed Color documents/],
    ['32-bit', docInfo({ bits: 'bitDepth32' }), req(), 'UPB_UNSUPPORTED_DOCUMENT', /^32-bit documents can't be upscaled: convert a copy with Image > Mode > 16 Bits\/Channel/],
    ['1-bit', docInfo({ bits: 'bitDepth1' }), req(), 'UPB_UNSUPPORTED_DOCUMENT', /8 or 16 bits/],
    ['no selection', docInfo(), req(), 'UPB_NOTHING_TO_UPSCALE', /nothing is selected/],
    ['an empty selection', docInfo({ selection: { left: 10, top: 10, right: 10, bottom: 30 } }), req(), 'UPB_NOTHING_TO_UPSCALE', /empty or outside the canvas/],
    ['a selection outside the canvas', docInfo({ selection: { left: 120, top: 0, right: 150, bottom: 30 } }), req(), 'UPB_NOTHING_TO_UPSCALE', /empty or outside the canvas/],
    ['no active layer', docInfo({ activeLayers: [] }), req({ target: 'layer', destination: 'new-layer' }), 'UPB_NOTHING_TO_UPSCALE', /no layer is active/],
    ['two active layers', docInfo({ activeLayers: [layer(2, 'A'), layer(3, 'B')] }), req({ target: 'layer', destination: 'new-layer' }), 'UPB_NOTHING_TO_UPSCALE', /2 layers are active/],
    ['a group', docInfo({ activeLayers: [layer(2, 'Folder', 'group')] }), req({ target: 'layer', destination: 'new-layer' }), 'UPB_NOTHING_TO_UPSCALE', /"Folder" is a group/],
    ['an adjustment layer', docInfo({ activeLayers: [layer(2, 'Curves 1', 'curves')] }), req({ target: 'layer', destination: 'new-layer' }), 'UPB_NOTHING_TO_UPSCALE', /a curves layer, which has no pixels/],
    ['an empty layer', docInfo({ activeLayers: [layer(2, 'Empty', 'pixel', { left: 0, top: 0, right: 0, bottom: 0 })] }), req({ target: 'layer', destination: 'new-layer' }), 'UPB_NOTHING_TO_UPSCALE', /"Empty" is empty/],
    ['layers with no pixel layer', docInfo({ layers: [layer(2, 'Title', 'text')] }), req({ target: 'document', destination: 'layers' }), 'UPB_NOTHING_TO_UPSCALE', /no pixel layers/],
  ])('%s', (_what, doc, request, code, message) => {
    const error = thrown(() => planUpscale(doc, request, limits));
    expect(error.code).toBe(code);
    expect(error.message).toMatch(message);
  });
});

describe('planUpscale reads', () => {
  test('a selection is clipped to the canvas; new-document needs no resize', () => {
    const plan = planUpscale(docInfo({ selection: { left: -10, top: -5, right: 30, bottom: 20 } }), req(), limits);
    expect(plan).toEqual({ depth: 8, reads: [{ source: { bounds: { left: 0, top: 0, right: 30, bottom: 20 } }, width: 30, height: 20, label: 'Selection' }], resampledByPhotoshop: 0 });
  });

  test('16-bit grey, new layer: the document size is scaled', () => {
    const plan = planUpscale(docInfo({ mode: 'grayscaleMode', bits: 'bitDepth16', selection: { left: 1, top: 2, right: 11, bottom: 12 } }), req({ destination: 'new-layer', scale: 2.5 }), limits);
    expect(plan.depth).toBe(16);
    expect(plan.documentSize).toEqual({ width: 250, height: 200 });
  });

  test('layer by layer: pixel layers with content, in order, labelled; text and smart objects left to Photoshop', () => {
    const layers = [layer(5, 'Title', 'text'), layer(4, 'Group', 'group'), layer(3, 'Inner'), layer(6, 'Blank', 'pixel', { left: 0, top: 0, right: 0, bottom: 0 }), layer(2, 'Logo', 'smartObject'), layer(1, 'Background', 'pixel', undefined, true)];
    const plan = planUpscale(docInfo({ layers }), req({ target: 'document', destination: 'layers', scale: 2 }), limits);
    expect(plan.reads.map((r) => [r.source.layerId, r.replaceLayerId, r.label])).toEqual([
      [3, 3, 'Layer 1 of 2: Inner'],
      [1, 1, 'Layer 2 of 2: Background'],
    ]);
    expect(plan.resampledByPhotoshop).toBe(2);
  });
});

describe('limits', () => {
  const small = { maxBodyBytes: 1 << 20, maxInputPixels: 10_000, maxOutputSide: 512, maxOutputPixels: 200_000 };

  test('too large an output names the largest scale that fits, which does fit, a tenth more does not', () => {
    const doc = docInfo({ selection: { left: 0, top: 0, right: 48, bottom: 40 } });
    const error = thrown(() => planUpscale(doc, req({ scale: 16 }), small));
    expect(error.code).toBe('UPB_TOO_LARGE');
    const best = error.details!.largestScale as number;
    expect(error.message).toContain(`the largest scale that fits is ${best}x`);
    expect(fitsLimits(48, 40, best, small)).toBe(true);
    expect(fitsLimits(48, 40, best + 0.1, small)).toBe(false);
    expect(() => planUpscale(doc, req({ scale: best }), small)).not.toThrow();
  });

  test('input pixels and upload bytes', () => {
    expect(thrown(() => planUpscale(docInfo({ width: 200, height: 200, selection: { left: 0, top: 0, right: 100, bottom: 101 } }), req({ scale: 1 }), small)).message).toMatch(/at most 10000 pixels/);
    const deep = docInfo({ bits: 'bitDepth16', selection: { left: 0, top: 0, right: 100, bottom: 80 } });
    expect(thrown(() => planUpscale(deep, req({ scale: 1 }), { ...small, maxBodyBytes: 100 * 80 * 8 - 1 })).message).toMatch(/upload limit/);
  });

  test('in place, the resized document must fit too, even when the selection does', () => {
    const doc = docInfo({ width: 300, height: 80, selection: { left: 0, top: 0, right: 10, bottom: 10 } });
    expect(() => planUpscale(doc, req({ scale: 2 }), small)).not.toThrow();
    expect(thrown(() => planUpscale(doc, req({ destination: 'new-layer', scale: 2 }), small)).message).toMatch(/^the document \(Photo\) at 2x would be 600×160 px/);
  });
});

test('scaledOrigin and scaleLabel', () => {
  expect(scaledOrigin({ left: 3, top: 5, right: 9, bottom: 9 }, 2.5)).toEqual({ left: 8, top: 13 });
  expect([scaleLabel(4), scaleLabel(2.5), scaleLabel(1.25), scaleLabel(3.333)]).toEqual(['×4', '×2.5', '×1.25', '×3.33']);
});
