// Progressive enhancement only: every page works without this file.
'use strict';

// Copy buttons: copy the value of the input named by data-copy.
document.addEventListener('click', (ev) => {
  const button = ev.target instanceof Element ? ev.target.closest('button[data-copy]') : null;
  if (!button) return;
  const input = document.getElementById(button.getAttribute('data-copy'));
  if (!input) return;
  input.select();
  const done = () => {
    button.textContent = 'Copied';
    setTimeout(() => (button.textContent = 'Copy'), 1500);
  };
  if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(input.value).then(done, () => document.execCommand('copy') && done());
  else if (document.execCommand('copy')) done();
});

// Live manifest: file states and upload progress from the server-sent event stream.
const manifest = document.getElementById('manifest');
if (manifest && window.EventSource) {
  const rows = new Map();
  for (const tr of manifest.querySelectorAll('tr[data-path]')) rows.set(tr.getAttribute('data-path'), tr);
  const source = new EventSource(manifest.getAttribute('data-live'));
  source.onopen = () => manifest.setAttribute('data-live-state', 'open');
  source.onerror = () => manifest.setAttribute('data-live-state', 'reconnecting');
  source.onmessage = (msg) => {
    let data;
    try {
      data = JSON.parse(msg.data);
    } catch {
      return;
    }
    const tr = rows.get(data.path);
    if (!tr) return;
    tr.className = 'state-' + data.state;
    const state = tr.querySelector('[data-field="state"]');
    if (state) {
      state.textContent = data.state;
      state.className = 'state state-' + data.state;
    }
    const label = tr.querySelector('[data-field="label"]');
    if (label) label.textContent = data.label;
    const bar = tr.querySelector('[data-field="bar"]');
    if (bar && data.size) {
      bar.max = data.size;
      bar.value = data.state === 'complete' ? data.size : data.bytes;
    }
  };
  source.addEventListener('event', () => source.close());
}
