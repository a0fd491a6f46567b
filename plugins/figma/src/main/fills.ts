/**
 * Action 1: upscale image fills in place. Every IMAGE paint keeps everything but its image: the
 * layer's size, scale mode, crop transform, filters and rotation stay as they were, so the layer
 * looks the same, only sharper. An image shown by several layers is upscaled once.
 */
import { UpbridgeError } from '../../../../core/errors';
import { outputSize } from '../../../../core/scale';
import { CONTENT_TYPES, imageKind, ImageKind } from '../common/image-header';
import { FIGMA_MAX_IMAGE_SIDE, RunOutcome, RunRequest, modelChoice, engineName } from '../common/messages';
import { fillLimits, fitScale, formatScale } from './fit';
import { RunContext } from './run-context';
import { checkResult, JobResult } from './ui-jobs';

type FilledNode = SceneNode & MinimalFillsMixin;

export interface ImageUse {
  node: FilledNode;
  paintIndex: number;
}

/** The selection and, with `includeChildren`, everything inside it; each layer once. */
export function layersOf(selection: readonly SceneNode[], includeChildren: boolean): SceneNode[] {
  const seen = new Set<string>();
  const layers: SceneNode[] = [];
  const visit = (node: SceneNode) => {
    if (seen.has(node.id)) return;
    seen.add(node.id);
    layers.push(node);
    if (includeChildren && 'children' in node) for (const child of node.children) visit(child);
  };
  selection.forEach(visit);
  return layers;
}

/** IMAGE paints grouped by image hash, in layer order. Mixed fills (text ranges) are left alone. */
export function imageUses(layers: readonly SceneNode[]): Map<string, ImageUse[]> {
  const byHash = new Map<string, ImageUse[]>();
  for (const node of layers) {
    if (!('fills' in node) || !Array.isArray(node.fills)) continue;
    (node.fills as readonly Paint[]).forEach((paint, paintIndex) => {
      if (paint.type !== 'IMAGE' || !paint.imageHash) return;
      const uses = byHash.get(paint.imageHash) ?? [];
      uses.push({ node: node as FilledNode, paintIndex });
      byHash.set(paint.imageHash, uses);
    });
  }
  return byHash;
}

export function countImageFills(selection: readonly SceneNode[]): number {
  let count = 0;
  for (const uses of imageUses(layersOf(selection, true)).values()) count += uses.length;
  return count;
}

interface FillPlan {
  hash: string;
  uses: ImageUse[];
  name: string;
  bytes: Uint8Array;
  kind: ImageKind;
  width: number;
  height: number;
  scale: number;
  out: { width: number; height: number };
}

export async function upscaleFills(ctx: RunContext, request: RunRequest): Promise<RunOutcome> {
  const { api } = ctx;
  const selection = api.currentPage.selection;
  const byImage = imageUses(layersOf(selection, request.includeChildren));
  if (byImage.size === 0) {
    const hint = request.includeChildren ? '' : ' (or tick "Include layers inside" to look inside groups and frames)';
    throw new UpbridgeError('UPB_NOTHING_TO_UPSCALE', selection.length === 0 ? 'Nothing is selected: select layers with image fills' : `No image fills in the selection: select layers filled with an image${hint}`);
  }

  ctx.status(`Reading ${byImage.size} image${byImage.size === 1 ? '' : 's'}…`);
  const notes: string[] = [];
  const plans: FillPlan[] = [];
  for (const [hash, uses] of byImage) {
    const plan = await planImage(ctx, request, hash, uses, notes);
    if (plan) plans.push(plan);
  }
  if (plans.length === 0) throw new UpbridgeError('UPB_NOTHING_TO_UPSCALE', `Nothing to upscale: ${notes.join('; ')}`);

  const results: JobResult[] = [];
  for (const [i, plan] of plans.entries()) {
    const result = await ctx.jobs.run({
      index: i + 1,
      count: plans.length,
      label: `${plan.name}: ${plan.width}×${plan.height} → ${plan.out.width}×${plan.out.height} px`,
      bytes: plan.bytes,
      contentType: CONTENT_TYPES[plan.kind],
      scale: plan.scale,
      ...modelChoice(request),
      // JPEG stays JPEG (a photo as PNG would be several times the size); anything else is PNG.
      output: { kind: 'image', format: plan.kind === 'jpeg' ? 'jpeg' : 'png' },
    });
    checkResult(result, plan.out, FIGMA_MAX_IMAGE_SIDE, plan.name);
    if (result.pieces.length !== 1) throw new UpbridgeError('UPB_INTERNAL', `the result for ${plan.name} came in ${result.pieces.length} pieces; a fill takes one image`);
    results.push(result);
  }

  // Every image is created and every new fills list made before any layer changes, so a refused
  // image leaves the document as it was. The designer may have changed the layers while the bridge
  // worked: a deleted layer, or one no longer showing the image, is left alone with a note; a paint
  // that moved (a fill added above it) is found by its image.
  const images = results.map((result) => ctx.api.createImage(result.pieces[0].bytes));
  const newFills = new Map<FilledNode, Paint[]>();
  const applied = new Set<FillPlan>();
  plans.forEach((plan, i) => {
    const actualScale = results[i].width / plan.width;
    for (const use of plan.uses) {
      if (use.node.removed) {
        notes.push(`${plan.name}: a layer showing this image was deleted while upscaling, skipped`);
        continue;
      }
      const current = use.node.fills;
      const fills = newFills.get(use.node) ?? (Array.isArray(current) ? [...(current as readonly Paint[])] : []);
      const shows = (p: Paint | undefined) => p?.type === 'IMAGE' && p.imageHash === plan.hash;
      const at = shows(fills[use.paintIndex]) ? use.paintIndex : fills.findIndex(shows);
      if (at < 0) {
        notes.push(`"${use.node.name}": its image fill was changed while upscaling, left as it is`);
        continue;
      }
      fills[at] = withImage(fills[at] as ImagePaint, images[i].hash, actualScale);
      newFills.set(use.node, fills);
      applied.add(plan);
    }
  });
  if (newFills.size === 0) throw new UpbridgeError('UPB_DOCUMENT_CHANGED', `Nothing was changed: ${notes.join('; ')}`);
  for (const [node, fills] of newFills) node.fills = fills;
  api.commitUndo();

  const layerCount = newFills.size;
  const done = plans.filter((p) => applied.has(p));
  const scales = [...new Set(done.map((p) => formatScale(p.scale)))].join(', ');
  const summary = `Upscaled ${done.length} image${done.length === 1 ? '' : 's'} (${scales}) in ${layerCount} layer${layerCount === 1 ? '' : 's'}`;
  return { summary, notes };
}

async function planImage(ctx: RunContext, request: RunRequest, hash: string, uses: ImageUse[], notes: string[]): Promise<FillPlan | undefined> {
  const name = describeUses(uses);
  const image = ctx.api.getImageByHash(hash);
  if (!image) {
    notes.push(`${name}: its image is not available in this file, skipped`);
    return undefined;
  }
  const bytes = await image.getBytesAsync();
  const kind = imageKind(bytes);
  if (kind === 'gif') {
    notes.push(`${name}: GIF fills are skipped (the models upscale still images, and Figma keeps GIFs animated)`);
    return undefined;
  }
  if (!kind) {
    notes.push(`${name}: not a PNG or JPEG image, skipped`);
    return undefined;
  }
  const { width, height } = await image.getSizeAsync();
  if (width * height > request.limits.maxInputPixels) {
    notes.push(`${name}: ${width}×${height} px is more than ${engineName(request)} takes (${Math.round(request.limits.maxInputPixels / 1e6)} MP), skipped`);
    return undefined;
  }
  const choice = fitScale(width, height, request.scale, fillLimits(request.limits));
  if (!choice) {
    notes.push(`${name}: already ${width}×${height} px, and Figma images are at most ${FIGMA_MAX_IMAGE_SIDE} px a side, skipped`);
    return undefined;
  }
  const out = outputSize(width, height, choice.scale);
  if (choice.clamped) {
    notes.push(`${name}: upscaled ${formatScale(choice.scale)} instead of ${formatScale(request.scale)} (${width}×${height} → ${out.width}×${out.height} px), the largest that fits Figma's ${FIGMA_MAX_IMAGE_SIDE} px limit`);
  }
  return { hash, uses, name, bytes, kind, width, height, scale: choice.scale, out };
}

/**
 * The same paint with the new image. Scale mode, crop transform (relative to the image, so it
 * still fits), filters and rotation are kept; only a tiled paint changes its scaling factor, since
 * Figma draws tiles at the image's pixel size times that factor: dividing by the scale keeps the
 * tiles the size they were.
 */
export function withImage(paint: ImagePaint, imageHash: string, actualScale: number): ImagePaint {
  const next: ImagePaint = { ...paint, imageHash };
  if (paint.scaleMode === 'TILE') return { ...next, scalingFactor: (paint.scalingFactor ?? 1) / actualScale };
  return next;
}

function describeUses(uses: ImageUse[]): string {
  const layers = [...new Set(uses.map((u) => u.node))];
  const more = layers.length - 1;
  return `"${layers[0].name}"${more > 0 ? ` and ${more} more layer${more === 1 ? '' : 's'}` : ''}`;
}
