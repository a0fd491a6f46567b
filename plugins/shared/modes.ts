/**
 * The modes as both plugins offer them: the words for each, the creativity slider's behaviour,
 * and after a run one line that says what ran and how close the result stays to the input, from
 * the bridge's job reports ("Creative (realesrgan-x4plus) · LR-PSNR 31.2 dB"). A run of several
 * jobs (layer by layer, several fills) gets one line for all of them.
 */
import type { JobReport, Mode } from './bridge-client';

export const MODE_LABELS: Record<Mode, string> = { fidelity: 'Fidelity', balanced: 'Balanced', creative: 'Creative' };

export const MODE_DESCRIPTIONS: Record<Mode, string> = {
  fidelity: 'Stays with the input: the most faithful model, its result made consistent with your pixels. Slowest.',
  balanced: 'The fast general model. Move the slider to blend the fidelity and creative results instead.',
  creative: 'A GAN invents plausible texture and detail: sharp, but not necessarily what was there.',
};

/** The creativity a mode implies when none is given (core/modes.ts); balanced implies none. */
export const MODE_CREATIVITY: Record<Mode, number | undefined> = { fidelity: 0, balanced: undefined, creative: 1 };

/**
 * Where the slider starts for each mode: at the creativity the mode implies. Balanced implies none
 * (the fast model alone), so its slider starts in the middle; like every mode's, it sends a
 * creativity only once the user moves it.
 */
export const SLIDER_START: Record<Mode, number> = { fidelity: 0, balanced: 0.5, creative: 1 };

/** What the slider's value label says: the value once moved, else what the mode does by itself. */
export function creativityText(mode: Mode, moved: boolean, value: number): string {
  if (moved) return formatCreativity(value);
  const implied = MODE_CREATIVITY[mode];
  if (implied === undefined) return 'not set: the fast model alone';
  return `${implied} (the ${implied === 0 ? 'fidelity' : 'creative'} result)`;
}

/** The models whose output makes the result: the single model, or the blend's ends that count. */
export function resultModels(report: JobReport): string[] {
  const { models, creativity } = report;
  if (models.result) return [models.result];
  const ends = creativity === undefined || creativity <= 0 ? [models.fidelity] : creativity >= 1 ? [models.creative] : [models.fidelity, models.creative];
  return ends.filter((m): m is string => m !== undefined);
}

/** What ran: "Creative (realesrgan-x4plus)", "Balanced · creativity 0.4 (a + b)", or the model alone. */
function describeModels(report: JobReport, models: string[]): string {
  const list = models.join(' + ');
  if (!report.mode) return list;
  const implied = MODE_CREATIVITY[report.mode];
  const creativity = report.creativity !== undefined && report.creativity !== implied ? ` · creativity ${formatCreativity(report.creativity)}` : '';
  return `${MODE_LABELS[report.mode]}${creativity} (${list})`;
}

export function formatCreativity(value: number): string {
  return String(Number(value.toFixed(2)));
}

/** One line for the reports of a run, in job order; undefined when the bridge sent none. */
export function describeRun(reports: readonly (JobReport | undefined)[]): string | undefined {
  const known = reports.filter((r): r is JobReport => r !== undefined);
  if (known.length === 0) return undefined;
  // Jobs of one run share their settings, but content detection may pick other models per image.
  const runs: string[] = [];
  for (const report of known) {
    const text = describeModels(report, resultModels(report));
    if (!runs.includes(text)) runs.push(text);
  }
  const psnrs = known.map((r) => r.lrPsnr);
  const low = Math.min(...psnrs);
  const high = Math.max(...psnrs);
  const psnr = low.toFixed(1) === high.toFixed(1) ? `${low.toFixed(1)} dB` : `${low.toFixed(1)}–${high.toFixed(1)} dB`;
  return `${runs.join('; ')} · LR-PSNR ${psnr}`;
}
