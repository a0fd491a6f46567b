import * as ort from 'onnxruntime-node';
import { catalogue } from '../core/catalogue';
import { ModelStore } from '../core/node/model-store';
import { ortRunner } from '../core/node/ort-session';
import { Engine } from './config';

/** The bridge's engine: models from the store, run by onnxruntime-node. */
export function nodeEngine(store: ModelStore = new ModelStore()): Engine {
  return {
    async runner(modelId) {
      return ortRunner((await store.ensureOne(modelId)).onnxPath);
    },
    async readyModels() {
      const ready = await Promise.all(catalogue.models.map(async (m) => ((await store.installed(m.id)) ? m.id : null)));
      return ready.filter((id): id is string => id !== null);
    },
    providers() {
      return ort.listSupportedBackends().filter((b) => b.bundled).map((b) => b.name);
    },
  };
}
