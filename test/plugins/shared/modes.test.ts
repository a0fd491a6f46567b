/**
 * The words both plugins show for modes: the line after a run (from the bridge's reports) and the
 * creativity slider's label. Reports here are written by hand in the bridge's shape; the plugin
 * suites check the same line against real reports.
 */
import { JobReport } from '../../../plugins/shared/bridge-client';
import { creativityText, describeRun, resultModels } from '../../../plugins/shared/modes';

const report = (fields: Partial<JobReport>): JobReport => ({ content: 'photo', contentDetected: true, consistent: false, models: {}, lrPsnr: 30, tiles: 1, passes: 1, ...fields });

test('one job: the mode and the model that made the result, then the LR-PSNR to one decimal', () => {
  expect(describeRun([report({ mode: 'creative', creativity: 1, models: { creative: 'realesrgan-x4plus' }, lrPsnr: 31.24 })])).toBe('Creative (realesrgan-x4plus) · LR-PSNR 31.2 dB');
  expect(describeRun([report({ mode: 'balanced', models: { result: 'realesr-general-x4v3' }, lrPsnr: 38.96 })])).toBe('Balanced (realesr-general-x4v3) · LR-PSNR 39.0 dB');
  expect(describeRun([report({ models: { result: 'realcugan-4x-conservative' }, lrPsnr: 100 })])).toBe('realcugan-4x-conservative · LR-PSNR 100.0 dB');
});

test('creativity is named only where it is not the mode’s own, and a blend names both ends', () => {
  expect(describeRun([report({ mode: 'fidelity', creativity: 0, consistent: true, models: { fidelity: 'esrgan-thick-x4' }, lrPsnr: 70 })])).toBe('Fidelity (esrgan-thick-x4) · LR-PSNR 70.0 dB');
  expect(describeRun([report({ mode: 'balanced', creativity: 0.3, models: { fidelity: 'esrgan-thick-x4', creative: 'realesrgan-x4plus' }, lrPsnr: 33.333 })])).toBe(
    'Balanced · creativity 0.3 (esrgan-thick-x4 + realesrgan-x4plus) · LR-PSNR 33.3 dB',
  );
  expect(describeRun([report({ mode: 'fidelity', creativity: 1, models: { creative: 'realesrgan-x4plus' } })])).toBe('Fidelity · creativity 1 (realesrgan-x4plus) · LR-PSNR 30.0 dB');
  // A map asked for alongside runs the fidelity model too; it did not make the result.
  expect(resultModels(report({ mode: 'creative', creativity: 1, models: { fidelity: 'esrgan-thick-x4', creative: 'realesrgan-x4plus' } }))).toEqual(['realesrgan-x4plus']);
  expect(resultModels(report({ models: { result: 'realesr-general-x4v3', fidelity: 'esrgan-thick-x4' } }))).toEqual(['realesr-general-x4v3']);
});

test('several jobs: one line, each different run once, the LR-PSNR as a range; nothing without reports', () => {
  const photo = report({ mode: 'creative', creativity: 1, models: { creative: 'realesrgan-x4plus' }, lrPsnr: 28.44 });
  const drawing = report({ mode: 'creative', creativity: 1, content: 'illustration', models: { creative: 'realesrgan-x4plus-anime' }, lrPsnr: 33.1 });
  expect(describeRun([photo, drawing, photo])).toBe('Creative (realesrgan-x4plus); Creative (realesrgan-x4plus-anime) · LR-PSNR 28.4–33.1 dB');
  expect(describeRun([photo, { ...photo, lrPsnr: 28.41 }])).toBe('Creative (realesrgan-x4plus) · LR-PSNR 28.4 dB');
  expect(describeRun([])).toBeUndefined();
  expect(describeRun([undefined])).toBeUndefined();
});

test('the slider label: the value once moved, else what the mode does by itself', () => {
  expect(creativityText('creative', false, 1)).toBe('1 (the creative result)');
  expect(creativityText('fidelity', false, 0)).toBe('0 (the fidelity result)');
  expect(creativityText('balanced', false, 0.5)).toBe('not set: the fast model alone');
  expect(creativityText('balanced', true, 0.35)).toBe('0.35');
  expect(creativityText('creative', true, 0.1 + 0.2)).toBe('0.3');
});
