import { defineConfig } from "vitest/config";
import react from "@vitejs/plugin-react";

// `npm run dev` proxies the API to a `tenfold dev` on :8080; the built
// dashboard is served by the server itself at `/`.
export default defineConfig({
  plugins: [react()],
  server: {
    proxy: {
      "/graphql": { target: "http://127.0.0.1:8080", ws: true },
      "/v1": "http://127.0.0.1:8080",
    },
  },
  test: { environment: "jsdom" },
});
