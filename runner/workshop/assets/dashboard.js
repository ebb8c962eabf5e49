// The instructor's dashboard: the room's board, rendered from the server's JSON (every text set
// with textContent: nothing participants send is ever read as HTML), kept live by an event stream.
'use strict';
(function () {
  const key = new URLSearchParams(location.search).get('key') || '';
  const $ = (id) => document.getElementById(id);
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function duration(s) {
    if (s < 60) return s + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min ' + (s % 60) + ' s';
    return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
  }
  function render(board) {
    const working = board.participants.filter((p) => !p.left).length;
    $('summary').textContent = board.participants.length + ' joined · ' + working + ' working now';
    const steps = $('steps');
    steps.replaceChildren(...board.steps.map((s) => {
      const box = el('div', 'step' + (s.here ? ' busy' : ''));
      box.dataset.step = s.part + '/' + s.step;
      box.append(el('span', 'id', s.step), el('span', 'title', s.title));
      const counts = el('span', 'counts', s.passed + ' passed · ' + s.here + ' here');
      box.append(counts);
      box.dataset.passed = s.passed;
      box.dataset.here = s.here;
      return box;
    }));
    const rows = board.participants.map((p) => {
      const tr = el('tr', p.left ? 'left' : '');
      tr.dataset.name = p.name;
      const who = el('td');
      who.append(el('strong', '', p.name), el('small', '', ' ' + p.id));
      let place = p.left ? 'left' : (p.step ? p.step + ' ' + (p.step_title || '') : (p.finished.length ? 'finished ' + p.finished.join(', ') : (p.part ? p.part + ' starting' : '—')));
      if (!p.left && p.seen_s_ago >= 90) place += ' (not heard from for ' + duration(p.seen_s_ago) + ')';
      const where = el('td', '', place);
      const onIt = el('td', p.on_step_s > 300 && !p.left ? 'stuck' : '', duration(p.on_step_s));
      const passed = el('td', '', p.checks_passed + ' (' + p.steps_passed + ' steps)');
      const failure = el('td', 'failure');
      if (p.last_failure) {
        const f = p.last_failure;
        failure.append(el('div', 'what', f.step + ': ' + f.what));
        if (f.expected) failure.append(el('div', '', 'expected ' + f.expected));
        if (f.saw) failure.append(el('div', '', 'saw ' + f.saw));
        if (f.hint) failure.append(el('div', 'hint', 'hint: ' + f.hint));
      }
      tr.append(who, where, onIt, passed, failure);
      return tr;
    });
    document.querySelector('#people tbody').replaceChildren(...rows);
    document.body.dataset.updated = String(performance.timeOrigin + performance.now());
  }
  try {
    const initial = JSON.parse($('initial').textContent);
    if (initial) render(initial);
  } catch (e) {
    $('summary').textContent = 'the dashboard could not read its state: ' + e;
  }
  const stream = new EventSource('/dashboard/events?key=' + encodeURIComponent(key));
  stream.addEventListener('board', (e) => render(JSON.parse(e.data)));
  stream.addEventListener('error', () => { $('summary').textContent = 'the workshop server is not answering (reconnecting…)'; });
})();
