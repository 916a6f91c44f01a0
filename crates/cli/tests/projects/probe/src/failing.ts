// Kept apart so that the line of the throw is known to the test.
export function failDeep(what: string): never {
  const reason: string = `failed: ${what}`;
  throw new TypeError(reason);
}
