/**
 * The plugin's main thread, bundled into dist/figma/code.js. Figma provides `figma` and, with the
 * manifest's `ui`, the UI's HTML as `__html__`; everything else takes the API as a parameter, so
 * the tests run the same code against a simulated host.
 */
import { startPlugin } from './main/plugin';

declare const figma: PluginAPI;
declare const __html__: string;

startPlugin(figma, __html__);
