import { defineConfig } from 'vite';

// The console is served by `baton serve` under /console/ (its index also at /).
export default defineConfig({
  base: '/console/',
  build: { outDir: 'dist', assetsDir: 'assets', chunkSizeWarningLimit: 2000 },
});
