import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

/**
 * The panel is served by the Sotto server itself under a CSP of script-src/style-src 'self':
 * everything must be an external, hashed file — no inline scripts or styles, no eval.
 */
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  plugins: [react()],
  build: {
    outDir: fileURLToPath(new URL('../dist/web', import.meta.url)),
    emptyOutDir: true,
    assetsDir: 'assets',
    // The polyfill would be inlined into index.html; every browser we support has modulepreload.
    modulePreload: { polyfill: false },
    // Never turn a small asset into a data: URL inside CSS or JS (keeps CSP reasoning simple).
    assetsInlineLimit: 0,
    sourcemap: false,
  },
});
