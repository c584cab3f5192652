// ESLint for the TypeScript sources, tests and benchmarks (`npm run lint`, run by .ci/run).
import js from "@eslint/js";
import tseslint from "typescript-eslint";

/** One config per layer: imports from the folders above it are refused. */
function layers(rules) {
  return rules.map(([files, above]) => ({
    files: [files],
    rules: {
      "no-restricted-imports": [
        "error",
        { patterns: [{ group: above.map((dir) => `**/${dir}/*`), message: `${files} must not import from a layer above it` }] },
      ],
    },
  }));
}

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "bench/results/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // A promise nobody awaits must say so (`void`): an unhandled rejection ends the process.
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": ["error", { checksVoidReturn: false }],
      // Kysely<any> is how the store holds databases of tables it discovers at run time.
      "@typescript-eslint/no-explicit-any": "off",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" }],
    },
  },
  // The layers of src/, lowest first: model/ (and the shared modules beside it) < store/ < manager/ <
  // engine/ < webhooks/ < server/ < cli/. A module imports only from its own layer or lower ones; the
  // client imports no server code.
  ...layers([
    ["src/model/**", ["store", "manager", "engine", "webhooks", "server", "cli", "client"]],
    ["src/store/**", ["manager", "engine", "webhooks", "server", "cli", "client"]],
    ["src/manager/**", ["engine", "webhooks", "server", "cli", "client"]],
    ["src/engine/**", ["webhooks", "server", "cli", "client"]],
    ["src/webhooks/**", ["server", "cli", "client"]],
    ["src/server/**", ["cli", "client"]],
    ["src/client/**", ["store", "manager", "engine", "webhooks", "server", "cli"]],
  ]),
  {
    files: ["**/*.js", "**/*.mjs"],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      parserOptions: { projectService: false, program: null },
      globals: { process: "readonly", console: "readonly", URL: "readonly", Buffer: "readonly" },
    },
  },
  // The dashboard's modules run in the browser (served as they are, no build step).
  {
    files: ["ui/**/*.js"],
    languageOptions: {
      globals: Object.fromEntries(
        [
          "window",
          "document",
          "location",
          "addEventListener",
          "removeEventListener",
          "sessionStorage",
          "fetch",
          "AbortController",
          "ResizeObserver",
          "URLSearchParams",
          "TextDecoderStream",
          "setTimeout",
          "console",
        ].map((name) => [name, "readonly"]),
      ),
    },
  },
);
