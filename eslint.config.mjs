// The linter: ESLint's and typescript-eslint's recommended rules over every TypeScript and
// JavaScript file of the project (`npm run lint`, run by `npm test`), with three choices:
import js from "@eslint/js";
import tseslint from "typescript-eslint";
import globals from "globals";

export default tseslint.config(
  { ignores: ["node_modules/", "dist/", "bin/", "test/.work/", ".pulumi/", "bench/*/results/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      // A leading underscore names what is left out on purpose (`const { a: _a, ...rest } = x`).
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_", destructuredArrayIgnorePattern: "^_" },
      ],
    },
  },
  {
    // The tests and benchmarks speak untyped wire formats (gRPC structs, Pulumi's mocks, JSON
    // event logs) where `any` is the honest type; the product's code keeps the rule.
    files: ["test/**", "bench/**"],
    rules: { "@typescript-eslint/no-explicit-any": "off" },
  },
  {
    // Plain CommonJS scripts run by node without a build step.
    files: ["**/*.js"],
    rules: { "@typescript-eslint/no-require-imports": "off" },
  },
);
