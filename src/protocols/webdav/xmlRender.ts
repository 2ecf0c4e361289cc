/**
 * Renders property values kept in nephele's parsed form (DAV: names bare, others `uri%%local`,
 * `$` attributes, `_` text) back to XML. Every non-DAV element declares its own default namespace,
 * so the output is namespace-correct whatever prefixes the client used.
 */
export type XmlValue = string | number | boolean | null | undefined | { [k: string]: unknown } | unknown[];

export function escapeText(s: string): string {
  return s.replace(/[&<>]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : '&gt;'));
}

export function escapeAttr(s: string): string {
  return s.replace(/[&<>"]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : '&quot;'));
}

function split(key: string): { uri: string; local: string } {
  const i = key.indexOf('%%');
  return i < 0 ? { uri: 'DAV:', local: key } : { uri: key.slice(0, i), local: key.slice(i + 2) };
}

function attributes(attrs: unknown, uri: string): string {
  if (!attrs || typeof attrs !== 'object') return '';
  let out = '';
  let n = 0;
  for (const [k, v] of Object.entries(attrs as Record<string, unknown>)) {
    if (k === 'xmlns' || typeof v !== 'string') continue;
    if (k.includes('%%')) {
      const a = split(k);
      if (a.uri === uri) out += ` ${a.local}="${escapeAttr(v)}"`;
      else out += ` xmlns:a${n}="${escapeAttr(a.uri)}" a${n++}:${a.local}="${escapeAttr(v)}"`;
    } else out += ` ${k}="${escapeAttr(v)}"`;
  }
  return out;
}

/** One element named by `key` holding `value`; arrays give one element per item. */
export function renderElement(key: string, value: unknown, parentUri = 'DAV:'): string {
  if (Array.isArray(value)) return value.map((v) => renderElement(key, v, parentUri)).join('');
  const { uri, local } = split(key);
  const name = uri === 'DAV:' ? `D:${local}` : local;
  const ns = uri === 'DAV:' || uri === parentUri ? '' : ` xmlns="${escapeAttr(uri)}"`;
  const inner = renderContent(value, uri);
  const attrs = value && typeof value === 'object' ? attributes((value as Record<string, unknown>).$, uri) : '';
  return inner === '' ? `<${name}${ns}${attrs}/>` : `<${name}${ns}${attrs}>${inner}</${name}>`;
}

export function renderContent(value: unknown, uri = 'DAV:'): string {
  if (value === null || value === undefined) return '';
  if (typeof value !== 'object') return escapeText(String(value));
  let out = '';
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (k === '$') continue;
    if (k === '_') out += escapeText(String(v));
    else out += renderElement(k, v, uri === 'DAV:' ? 'DAV:' : uri);
  }
  return out;
}
