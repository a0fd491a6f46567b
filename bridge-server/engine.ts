import { catalogue } from '../core/catalogue';
import { ModelStore } from '../core/node/model-store';
import { modelRunner } from '../core/node/model-runner';
import { parseProvider, processProviders, ProviderChoice } from '../core/node/providers';
import { Engine } from './config';

export interface NodeEngineOptions {
  /** Execution provider: `auto` (default, or $UPBRIDGE_PROVIDER) or one forced (`serve --provider`). */
  provider?: ProviderChoice | string;
}

/** The bridge's engine: models from the store, run by onnxruntime-node. */
export function nodeEngine(store: ModelStore = new ModelStore(), options: NodeEngineOptions = {}): Engine {
  // Validated here, where the option enters, so a bad name stops the server before it listens.
  const provider = parseProvider(options.provider);
  return {
    async runner(modelId, onInstallStep) {
      return modelRunner(store, modelId, { provider, onInstallStep: onInstallStep && ((_id, step) => onInstallStep(step)) });
    },
    async readyModels() {
      // A corrupt file is "not ready" here (health must answer); using it reports the repair.
      const ready: string[] = [];
      for (const m of catalogue.models) if ((await store.check(m.id)).state === 'ok') ready.push(m.id);
      return ready;
    },
    async providers() {
      // What works here (probed once per process), not what onnxruntime-node was built with.
      return (await processProviders.candidates(provider)).tries;
    },
  };
}
