import { catalogue } from '../core/catalogue';
import { ModelStore } from '../core/node/model-store';

/** Download and convert every catalogue model once, before the workers race to do it. */
export default async function globalSetup(): Promise<void> {
  await new ModelStore().ensure(catalogue.models.map((m) => m.id));
}
