import { format } from 'util';

import './.config/jest-setup';

// A test that makes React or @grafana/ui log an error or a warning fails: those messages are
// how they report misuse (unknown props, act() gaps, bad keys).
let logged = [];
beforeEach(() => {
  logged = [];
  for (const level of ['error', 'warn']) {
    jest.spyOn(console, level).mockImplementation((...args) => {
      logged.push(`console.${level}: ${format(...args)}`);
    });
  }
});
afterEach(() => {
  jest.restoreAllMocks();
  if (logged.length > 0) {
    throw new Error(`the test logged:\n${logged.join('\n')}`);
  }
});
