import { afterAll, expect } from 'vitest';

/** Makes an unhandled promise rejection anywhere in a test file fail that file. */
const rejections: unknown[] = [];
process.on('unhandledRejection', (reason) => rejections.push(reason));

afterAll(() => {
  expect(rejections.map(String), 'unhandled promise rejections').toEqual([]);
});
