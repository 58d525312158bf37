/** @module Vite build of the web interface: Preact (JSX through Vite's own transform, no plugin), output in web/dist (git-ignored). */
import { defineConfig } from 'vite'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('.', import.meta.url))

export default defineConfig({
  root,
  // Relative asset URLs: the same build works at / on the local server, as Worker static assets and behind any prefix.
  base: './',
  // shared/assets/ (the offline embedder's lexicon) is copied into web/dist, where the Worker reads it as a static asset.
  publicDir: fileURLToPath(new URL('../shared/assets', import.meta.url)),
  logLevel: 'warn',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    reportCompressedSize: false,
    modulePreload: { polyfill: false }
  }
})
