import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RateLimiter } from '../../src/util/rate-limit.ts';

function clock() {
  let t = 1000;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

test('allows `limit` hits, then refuses', () => {
  const c = clock();
  const rl = new RateLimiter({ limit: 3, windowMs: 60_000, maxKeys: 100, now: c.now });
  assert.equal(rl.blocked('ip'), false);
  assert.equal(rl.hit('ip'), true);
  assert.equal(rl.hit('ip'), true);
  assert.equal(rl.blocked('ip'), false);
  assert.equal(rl.hit('ip'), true);
  assert.equal(rl.blocked('ip'), true);
  assert.equal(rl.hit('ip'), false);
  assert.equal(rl.hit('other'), true); // keys are independent
});

test('refills over the window, lazily', () => {
  const c = clock();
  const rl = new RateLimiter({ limit: 2, windowMs: 1000, maxKeys: 100, now: c.now });
  rl.hit('k');
  rl.hit('k');
  assert.equal(rl.hit('k'), false);
  c.advance(499);
  assert.equal(rl.blocked('k'), true);
  c.advance(1); // half a window: one hit back
  assert.equal(rl.blocked('k'), false);
  assert.equal(rl.hit('k'), true);
  assert.equal(rl.hit('k'), false);
  c.advance(1000); // a whole window: full allowance, and the key is forgotten
  assert.equal(rl.blocked('k'), false);
  assert.equal(rl.size, 0);
  assert.equal(rl.hit('k'), true);
  assert.equal(rl.hit('k'), true);
  assert.equal(rl.hit('k'), false);
});

test('refused hits do not extend the block', () => {
  const c = clock();
  const rl = new RateLimiter({ limit: 1, windowMs: 1000, maxKeys: 10, now: c.now });
  rl.hit('k');
  for (let i = 0; i < 10; i++) {
    c.advance(50);
    assert.equal(rl.hit('k'), false);
  }
  c.advance(500);
  assert.equal(rl.hit('k'), true);
});

test('bounded memory: evicts the least recently hit key', () => {
  const c = clock();
  const rl = new RateLimiter({ limit: 1, windowMs: 60_000, maxKeys: 3, now: c.now });
  rl.hit('a');
  rl.hit('b');
  rl.hit('c');
  assert.equal(rl.hit('a'), false); // refused: a stays where it was (oldest)
  rl.hit('d'); // evicts a
  assert.equal(rl.size, 3);
  assert.equal(rl.blocked('a'), false);
  assert.equal(rl.blocked('b'), true);
  assert.equal(rl.blocked('d'), true);
  for (let i = 0; i < 1000; i++) rl.hit(`k${i}`);
  assert.equal(rl.size, 3);
});

test('reset and option validation', () => {
  const rl = new RateLimiter({ limit: 1, windowMs: 1000, maxKeys: 10 }); // real monotonic clock
  rl.hit('k');
  assert.equal(rl.blocked('k'), true);
  rl.reset('k');
  assert.equal(rl.blocked('k'), false);
  assert.throws(() => new RateLimiter({ limit: 0, windowMs: 1000, maxKeys: 10 }), RangeError);
  assert.throws(() => new RateLimiter({ limit: 1, windowMs: 0, maxKeys: 10 }), RangeError);
  assert.throws(() => new RateLimiter({ limit: 1, windowMs: 1000, maxKeys: 0 }), RangeError);
});
