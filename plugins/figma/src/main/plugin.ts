/**
 * The main thread: it owns the document and Figma's storage, and nothing else. The UI iframe asks
 * for an action; the action reads the selection, hands each image to the UI to upscale on the
 * bridge, and changes the document only once every result is back, in one undo step.
 */
import { isUpbridgeError, UpbridgeError } from '../../../../core/errors';
import { SCALE_LIMITS } from '../../../../core/scale';
import { MODES } from '../../../shared/bridge-client';
import { ENGINES, ErrorInfo, MainToUi, MODEL_FILE_KEY_PREFIX, RunOutcome, RunRequest, SelectionSummary, UiToMain } from '../common/messages';
import { countImageFills, upscaleFills } from './fills';
import { upscaleFrames } from './frames';
import { RunContext } from './run-context';
import { UiJobs } from './ui-jobs';

/** figma.clientStorage keys: kept per user and machine by Figma, out of the document. */
export const STORAGE_KEYS = { token: 'upbridge.token', bridgeUrl: 'upbridge.bridgeUrl', modelMirrors: 'upbridge.modelMirrors' } as const;

/**
 * The bridge as the manifest's networkAccess allows it. `localhost`, not 127.0.0.1: Figma's
 * network allow-list is matched against the URL's host, and the manifest names localhost.
 */
export const DEFAULT_FIGMA_BRIDGE_URL = 'http://localhost:7419';

export const UI_SIZE = { width: 320, height: 540 };

export function startPlugin(api: PluginAPI, html: string): void {
  const post = (message: MainToUi) => api.ui.postMessage(message);
  const jobs = new UiJobs(post);
  let running = false;

  api.showUI(html, { ...UI_SIZE, themeColors: true, title: 'upbridge' });
  api.on('selectionchange', () => post({ type: 'selection', selection: summarize(api.currentPage.selection) }));

  const run = async (request: RunRequest) => {
    if (running) {
      post({ type: 'failed', error: { code: 'UPB_INVALID_OPTION', message: 'An upscale is already running: wait for it or cancel it' } });
      return;
    }
    running = true;
    jobs.begin(request.engine ?? 'bridge');
    const ctx: RunContext = { api, jobs, status: (text) => post({ type: 'status', text }) };
    try {
      const outcome: RunOutcome = request.action === 'fills' ? await upscaleFills(ctx, request) : await upscaleFrames(ctx, request);
      post({ type: 'finished', outcome });
      api.notify(outcome.notes.length ? `${outcome.summary} (${outcome.notes.length} note${outcome.notes.length === 1 ? '' : 's'} in the plugin window)` : outcome.summary);
    } catch (error) {
      const info = errorInfo(error);
      const cancelled = info.code === 'UPB_CANCELLED';
      if (cancelled) info.message = 'Upscale cancelled: nothing was changed';
      post({ type: 'failed', error: info });
      api.notify(info.message, { error: !cancelled });
    } finally {
      running = false;
    }
  };

  const handle = async (message: UiToMain) => {
    switch (message.type) {
      case 'ready': {
        const [token, bridgeUrl, mirrors] = await Promise.all([
          api.clientStorage.getAsync(STORAGE_KEYS.token),
          api.clientStorage.getAsync(STORAGE_KEYS.bridgeUrl),
          api.clientStorage.getAsync(STORAGE_KEYS.modelMirrors),
        ]);
        post({
          type: 'init',
          token: typeof token === 'string' ? token : null,
          bridgeUrl: typeof bridgeUrl === 'string' ? bridgeUrl : DEFAULT_FIGMA_BRIDGE_URL,
          selection: summarize(api.currentPage.selection),
          // Other places to fetch the model's npm files from (a company mirror); the UI's default is the public CDNs.
          ...(Array.isArray(mirrors) && mirrors.every((m) => typeof m === 'string') ? { modelMirrors: mirrors as string[] } : {}),
        });
        return;
      }
      // The UI's cache of verified model files (it has no storage of its own: its origin is null).
      case 'stored-get': {
        const value = message.key.startsWith(MODEL_FILE_KEY_PREFIX) ? await api.clientStorage.getAsync(message.key).catch(() => undefined) : undefined;
        post({ type: 'stored', requestId: message.requestId, bytes: value instanceof Uint8Array ? value : null });
        return;
      }
      case 'stored-set':
        // Best effort: over Figma's 5 MB quota the files are downloaded again next time, nothing worse.
        if (message.key.startsWith(MODEL_FILE_KEY_PREFIX) && message.bytes instanceof Uint8Array) await api.clientStorage.setAsync(message.key, message.bytes).catch(() => {});
        return;
      case 'save-token':
        if (message.token) await api.clientStorage.setAsync(STORAGE_KEYS.token, message.token);
        else await api.clientStorage.deleteAsync(STORAGE_KEYS.token);
        return;
      case 'notify':
        api.notify(message.message, { error: message.error });
        return;
      case 'run': {
        let request: RunRequest;
        try {
          request = validateRequest(message.request);
        } catch (error) {
          post({ type: 'failed', error: errorInfo(error) });
          return;
        }
        await run(request);
        return;
      }
      case 'cancel':
        jobs.cancelAll();
        return;
      case 'job-done':
      case 'job-failed':
        jobs.settle(message);
        return;
    }
  };
  // A failure outside a run (clientStorage refusing a write, say) still reaches the designer.
  api.ui.onmessage = (message: UiToMain) => {
    handle(message).catch((error) => api.notify(errorInfo(error).message, { error: true }));
  };
}

function summarize(selection: readonly SceneNode[]): SelectionSummary {
  return { layers: selection.length, imageFills: countImageFills(selection) };
}

/** The UI is ours, but its message is still input: a bad one gets a clear refusal, not a half-run. */
export function validateRequest(request: RunRequest): RunRequest {
  const invalid = (what: string) => new UpbridgeError('UPB_INVALID_OPTION', what);
  if (request.action !== 'fills' && request.action !== 'frames') throw invalid(`action must be "fills" or "frames", got ${JSON.stringify(request.action)}`);
  if (request.engine !== undefined && !ENGINES.includes(request.engine)) throw invalid(`engine must be one of ${ENGINES.join(', ')}, got ${JSON.stringify(request.engine)}`);
  if (typeof request.scale !== 'number' || !(request.scale >= SCALE_LIMITS.min && request.scale <= SCALE_LIMITS.max)) {
    throw invalid(`scale must be a number from ${SCALE_LIMITS.min} to ${SCALE_LIMITS.max}, got ${JSON.stringify(request.scale)}`);
  }
  if (request.mode !== undefined && !MODES.includes(request.mode)) throw invalid(`mode must be one of ${MODES.join(', ')}, got ${JSON.stringify(request.mode)}`);
  if (request.creativity !== undefined) {
    if (request.mode === undefined) throw invalid('creativity goes with a mode (fidelity, balanced or creative), which picks the two models it blends');
    if (typeof request.creativity !== 'number' || !(request.creativity >= 0 && request.creativity <= 1)) throw invalid(`creativity must be a number from 0 to 1, got ${JSON.stringify(request.creativity)}`);
  }
  const limits = request.limits;
  if (!limits || ![limits.maxOutputSide, limits.maxOutputPixels, limits.maxInputPixels].every((n) => typeof n === 'number' && n > 0)) {
    throw invalid('the bridge limits are missing from the request: reconnect to the bridge');
  }
  return request;
}

function errorInfo(error: unknown): ErrorInfo {
  if (isUpbridgeError(error)) return { code: error.code, message: error.message };
  // Figma's own errors (createImage refusing an image, say) are plain Errors.
  return { code: 'UPB_INTERNAL', message: `unexpected error: ${error instanceof Error ? error.message : String(error)}` };
}
