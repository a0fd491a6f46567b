import { UiJobs } from './ui-jobs';

/** What an action needs from the plugin: the Figma API, the UI's job runner and a status line. */
export interface RunContext {
  api: PluginAPI;
  jobs: UiJobs;
  status(text: string): void;
}
