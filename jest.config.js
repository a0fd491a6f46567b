const path = require('node:path');

// Tests install the real models once into a cache inside the checkout (git-ignored), so a
// second run skips the download and conversion. Set here, before workers start, so every
// worker and every spawned CLI sees the same home.
process.env.UPBRIDGE_HOME = process.env.UPBRIDGE_TEST_HOME || path.join(__dirname, '.cache', 'test-home');
// Tokens too: no test reads or writes the user's real config folder.
process.env.UPBRIDGE_CONFIG_DIR = path.join(__dirname, '.cache', 'test-config');
// Results compared byte for byte are CPU results; a GPU on the test machine would differ in the
// last float bits. Tests that exercise providers name theirs.
process.env.UPBRIDGE_PROVIDER = process.env.UPBRIDGE_PROVIDER || 'cpu';

/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: '<rootDir>/test/environment.js',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': ['@swc/jest'],
    // typebox 1.x ships only ES modules; jest's CommonJS runtime needs them compiled.
    '^.+/node_modules/typebox/.+\\.mjs$': ['@swc/jest', { module: { type: 'commonjs' } }],
  },
  transformIgnorePatterns: ['/node_modules/(?!typebox/)'],
  // Photoshop's modules exist only inside Photoshop: the plugin's real code runs against a
  // simulated host that follows @types/photoshop.
  moduleNameMapper: {
    '^photoshop$': '<rootDir>/test/plugins/photoshop/sim/photoshop.ts',
    '^uxp$': '<rootDir>/test/plugins/photoshop/sim/uxp.ts',
  },
  globalSetup: '<rootDir>/test/global-setup.ts',
  // Inference tests are CPU-bound and ONNX Runtime already uses both cores.
  maxWorkers: 2,
  testTimeout: 120000,
};
