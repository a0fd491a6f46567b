/**
 * Action 2: upscale a frame (or any layer) as an image. The layer is exported as a PNG at 1x,
 * upscaled, and placed beside the original as a new layer named after it with the scale, at one
 * image pixel per unit, on the frame's page even if the designer has gone to another page meanwhile
 * (a copy on the wrong page is lost from view). A result wider or taller than Figma's 4096 px image
 * limit arrives from the UI cut into tiles and is placed as a grid of image layers in one group,
 * keeping every pixel.
 */
import { UpbridgeError } from '../../../../core/errors';
import { outputSize } from '../../../../core/scale';
import { pngSize } from '../common/image-header';
import { FIGMA_MAX_IMAGE_SIDE, RunOutcome, RunRequest, modelChoice, engineName } from '../common/messages';
import { fitScale, formatScale } from './fit';
import { RunContext } from './run-context';
import { checkResult, JobResult } from './ui-jobs';

/** Space between the original and its upscaled copy, in canvas units. */
export const PLACEMENT_GAP = 40;

interface FramePlan {
  node: SceneNode;
  /** The node's name and place when read: the copy still goes there if the node is deleted meanwhile. */
  name: string;
  box: Rect;
  bytes: Uint8Array;
  width: number;
  height: number;
  scale: number;
  out: { width: number; height: number };
}

export async function upscaleFrames(ctx: RunContext, request: RunRequest): Promise<RunOutcome> {
  const { api } = ctx;
  // The page the frames are on: the designer may open another one while the bridge works.
  const startPage = api.currentPage;
  const selection = startPage.selection;
  if (selection.length === 0) throw new UpbridgeError('UPB_NOTHING_TO_UPSCALE', 'Nothing is selected: select the frames to upscale as images');

  const notes: string[] = [];
  const plans: FramePlan[] = [];
  for (const node of selection) {
    ctx.status(`Exporting "${node.name}"…`);
    const bytes = await node.exportAsync({ format: 'PNG', constraint: { type: 'SCALE', value: 1 } });
    const { width, height } = pngSize(bytes);
    if (width * height > request.limits.maxInputPixels) {
      notes.push(`"${node.name}": ${width}×${height} px is more than ${engineName(request)} takes (${Math.round(request.limits.maxInputPixels / 1e6)} MP), skipped`);
      continue;
    }
    const choice = fitScale(width, height, request.scale, request.limits);
    if (!choice) {
      notes.push(`"${node.name}": ${width}×${height} px cannot grow within ${request.engine === 'browser' ? 'the limit of upscaling in this window' : "the bridge's limit"} of ${request.limits.maxOutputSide} px a side, skipped`);
      continue;
    }
    const out = outputSize(width, height, choice.scale);
    if (choice.clamped) {
      notes.push(`"${node.name}": upscaled ${formatScale(choice.scale)} instead of ${formatScale(request.scale)} (${out.width}×${out.height} px), the largest the bridge makes`);
    }
    plans.push({ node, name: node.name, box: boxOf(node), bytes, width, height, scale: choice.scale, out });
  }
  if (plans.length === 0) throw new UpbridgeError('UPB_NOTHING_TO_UPSCALE', `Nothing to upscale: ${notes.join('; ')}`);

  const results: JobResult[] = [];
  for (const [i, plan] of plans.entries()) {
    const tiled = plan.out.width > FIGMA_MAX_IMAGE_SIDE || plan.out.height > FIGMA_MAX_IMAGE_SIDE;
    const result = await ctx.jobs.run({
      index: i + 1,
      count: plans.length,
      label: `"${plan.name}": ${plan.width}×${plan.height} → ${plan.out.width}×${plan.out.height} px`,
      bytes: plan.bytes,
      contentType: 'image/png',
      scale: plan.scale,
      ...modelChoice(request),
      output: tiled ? { kind: 'tiles', maxSide: FIGMA_MAX_IMAGE_SIDE } : { kind: 'image', format: 'png' },
    });
    checkResult(result, plan.out, FIGMA_MAX_IMAGE_SIDE, `"${plan.name}"`);
    results.push(result);
    if (tiled) notes.push(`"${plan.name}": ${plan.out.width}×${plan.out.height} px is larger than a Figma image (${FIGMA_MAX_IMAGE_SIDE} px a side), so it is placed as ${result.pieces.length} tiles in one group`);
  }

  // Where each copy goes: beside its frame, on the frame's page now (the designer may have moved it).
  const pages = plans.map((plan) => (plan.node.removed ? startPage : (pageOf(plan.node) ?? startPage)));
  // With "dynamic-page" access a page must be loaded before children are added; loading happens
  // before the first change, so the changes stay one undo step with no await between them.
  for (const page of new Set(pages)) await page.loadAsync();
  // Images first: a refused image leaves the document untouched.
  const images = results.map((result) => result.pieces.map((piece) => api.createImage(piece.bytes)));
  const placed = plans.map((plan, i) => place(api, pages[i], plan, results[i], images[i]));
  for (const page of new Set(pages)) {
    const here = placed.filter((_, i) => pages[i] === page);
    page.selection = here;
    if (api.currentPage === page) api.viewport.scrollAndZoomIntoView(here);
    else notes.push(`${here.length === 1 ? 'The copy is' : `${here.length} copies are`} on page "${page.name}", beside ${here.length === 1 ? 'its frame' : 'their frames'}, and selected there`);
  }
  api.commitUndo();

  const summary = `Placed ${placed.length} upscaled cop${placed.length === 1 ? 'y' : 'ies'}: ${placed.map((n) => `"${n.name}"`).join(', ')}`;
  return { summary, notes };
}

function pageOf(node: BaseNode): PageNode | undefined {
  let at: BaseNode | null = node;
  while (at && at.type !== 'PAGE') at = at.parent;
  return at ?? undefined;
}

function boxOf(node: SceneNode): Rect {
  return node.absoluteBoundingBox ?? { x: node.x, y: node.y, width: node.width, height: node.height };
}

function place(api: PluginAPI, page: PageNode, plan: FramePlan, result: JobResult, images: Image[]): SceneNode {
  const name = `${plan.node.removed ? plan.name : plan.node.name} @${formatScale(plan.scale)}`;
  const box = plan.node.removed ? plan.box : boxOf(plan.node);
  const left = box.x + box.width + PLACEMENT_GAP;
  const top = box.y;
  const tiles = result.pieces.map((piece, i) => {
    const rect = api.createRectangle();
    page.appendChild(rect);
    rect.name = result.pieces.length === 1 ? name : `${name} tile ${i + 1} of ${result.pieces.length}`;
    rect.resize(piece.width, piece.height);
    rect.x = left + piece.x;
    rect.y = top + piece.y;
    rect.fills = [{ type: 'IMAGE', scaleMode: 'FILL', imageHash: images[i].hash }];
    return rect;
  });
  if (tiles.length === 1) return tiles[0];
  const group = api.group(tiles, page);
  group.name = name;
  return group;
}
