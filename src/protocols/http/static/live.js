// Live updates for the recipient page: states and progress arrive as server-sent events, no reload.
// Text only ever goes in through textContent: file names are user data.
(function () {
  'use strict';
  var table = document.getElementById('files');
  if (!table || !window.EventSource) return;
  var LABEL = { pending: 'waiting for upload', uploading: 'uploading', complete: 'ready', failed: 'failed', removed: 'removed' };

  function rowFor(path) {
    var rows = table.querySelectorAll('tr[data-path]');
    for (var i = 0; i < rows.length; i++) if (rows[i].getAttribute('data-path') === path) return rows[i];
    return null;
  }

  function update(file) {
    var row = rowFor(file.path);
    if (!row) return;
    row.className = 'state-' + file.state;
    var stateCell = row.cells[2];
    var label = LABEL[file.state] || file.state;
    var size = file.size || Number(row.getAttribute('data-size')) || 0;
    if (file.state === 'uploading' && size > 0) label = 'uploading ' + Math.floor((100 * file.bytes) / size) + '%';
    stateCell.textContent = '';
    var badge = document.createElement('span');
    badge.className = 'state';
    badge.textContent = label;
    stateCell.appendChild(badge);
    if (file.state === 'uploading' || file.state === 'pending') {
      var bar = document.createElement('progress');
      bar.max = size;
      bar.value = file.bytes || 0;
      stateCell.appendChild(document.createTextNode(' '));
      stateCell.appendChild(bar);
    }
    var followable = file.state === 'complete' || (file.state === 'uploading' && row.getAttribute('data-size') !== '');
    if (followable && !row.cells[0].querySelector('a')) {
      var a = document.createElement('a');
      a.href = 'files/' + file.path.split('/').map(encodeURIComponent).join('/');
      a.setAttribute('download', '');
      a.textContent = file.path;
      row.cells[0].textContent = '';
      row.cells[0].appendChild(a);
    }
    if (file.state === 'removed' || file.state === 'failed') {
      var link = row.cells[0].querySelector('a');
      if (link) row.cells[0].textContent = file.path;
    }
    recount();
  }

  function recount() {
    var ready = table.querySelectorAll('tr.state-complete').length;
    var counter = document.getElementById('ready-count');
    if (counter) counter.textContent = String(ready);
    var zip = document.getElementById('zip-link');
    if (zip && ready > 0) zip.hidden = false;
  }

  var source = new EventSource(table.getAttribute('data-events'));
  source.addEventListener('snapshot', function (e) {
    JSON.parse(e.data).files.forEach(update);
  });
  source.addEventListener('file.state', function (e) { update(JSON.parse(e.data)); });
  source.addEventListener('file.progress', function (e) { update(JSON.parse(e.data)); });
  source.addEventListener('event.completed', function () { document.body.classList.add('event-complete'); });
  source.addEventListener('event.deleted', function () { source.close(); });
})();
