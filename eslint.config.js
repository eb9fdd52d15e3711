// typescript-eslint's strict, type-checked rules over the project's TypeScript; its scripts in
// plain JavaScript get the rules that need no types.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'build/', 'node_modules/', 'native/build/'] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { project: ['tsconfig.json', 'tsconfig.ui.json'], tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // A count or a port in a message reads as it should; objects and undefined still may not.
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      // A name starting with _ is one kept for its place (a parameter, a field left out of a rest).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true }],
    },
  },
  {
    // Grafana 11 provisions the v1 dashboard schema; the SDK marks its builder deprecated in favour of v2.
    files: ['grafana/generate/**'],
    rules: { '@typescript-eslint/no-deprecated': 'off' },
  },
  {
    files: ['test/**', 'bench/**'],
    rules: {
      // A test's (or a bench's) `!` on what its fixture must hold fails it loudly when it does not.
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        URL: 'readonly',
        Buffer: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        fetch: 'readonly',
      },
    },
  },
);
