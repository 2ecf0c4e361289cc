'use strict';
// Same results as crc-32 1.2.2 (signed 32-bit CRC, optional running seed), computed natively.
const { crc32 } = require('node:zlib');

const seedOf = (seed) => (typeof seed === 'number' ? seed >>> 0 : 0);

exports.version = '1.2.2';
exports.buf = (data, seed) => crc32(data, seedOf(seed)) | 0;
exports.str = (text, seed) => crc32(Buffer.from(String(text), 'utf8'), seedOf(seed)) | 0;
exports.bstr = (text, seed) => crc32(Buffer.from(String(text), 'latin1'), seedOf(seed)) | 0;
