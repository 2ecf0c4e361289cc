import test from 'ava';
import { canonicalPath, isWithin, resolveLexical } from '../../src/shared/paths.js';
import { GatewayError } from '../../src/shared/errors.js';

test('canonical paths drop empty and dot segments', (t) => {
  t.is(canonicalPath('/a//b/./c/'), 'a/b/c');
  t.is(canonicalPath(''), '');
  t.is(canonicalPath('/'), '');
});

test('NFD input is stored as NFC', (t) => {
  t.is(canonicalPath('cafe\u0301.txt'), 'caf\u00e9.txt');
});

const refused = [
  '..', '../x', 'a/../../x', 'a/..', 'x\\..\\y', 'a\u0000b', 'a\nb', '\uff0e\uff0e/x', 'a/\uff0e\uff0e', 'x\uff0fy',
  '\u2025', '...', '\u2024\u2024', 'a'.repeat(256), ('a/'.repeat(2100)),
];
for (const p of refused) {
  test(`refuses ${JSON.stringify(p).slice(0, 40)}`, (t) => {
    const err = t.throws(() => canonicalPath(p));
    t.true(err instanceof GatewayError);
    t.is((err as GatewayError).code, 'bad_request');
  });
}

test('containment is by segment, never by prefix', (t) => {
  t.true(isWithin('ev1', 'ev1/x'));
  t.true(isWithin('ev1', 'ev1'));
  t.false(isWithin('ev1', 'ev10/x'));
  t.false(isWithin('ev1', 'ev1-x'));
  t.true(isWithin('', 'anything'));
});

test('lexical resolution never climbs above the root', (t) => {
  t.is(resolveLexical('/../../etc/passwd'), 'etc/passwd');
  t.is(resolveLexical('a/b/../c'), 'a/c');
  t.is(resolveLexical('..'), '');
});
