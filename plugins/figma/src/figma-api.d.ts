// Figma's plugin API types (PluginAPI, SceneNode, ImagePaint, …) for the main thread and the test
// simulation. Only plugin-api.d.ts: the package's index.d.ts also declares global `fetch`,
// `setTimeout` and `console`, which clash with the DOM and Node types the rest of the project uses.
// The main thread gets `figma` handed in (see main.ts), so no global `figma` is declared.
/// <reference path="../../../node_modules/@figma/plugin-typings/plugin-api.d.ts" />
