// The error a parser throws, asserted to be of the expected class: the registry and findings
// specs check messages (file:line and wording) of errors they provoke on purpose.

import assert from 'node:assert/strict';

export function thrown<E extends Error>(fn: () => unknown, cls: abstract new (...args: never[]) => E): E {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof cls, String(e));
    return e;
  }
  assert.fail('no error');
}
