// lab-runner's page: renders the session's state and changes (Server-Sent Events), and sends the
// menu's choices. Everything it shows was rendered and escaped by the runner; nothing else runs here.
'use strict';
(function () {
  performance.mark('lab-script');
  const token = new URLSearchParams(location.search).get('token') || '';
  const $ = (id) => document.getElementById(id);
  let buttons = [];
  let status = {};
  let view = document.body.classList.contains('view-demo') ? 'demo' : 'start';
  // The session this page shows (its runner's id for it).
  let session = null;
  // What the intro and the step show now: a state that brings the same again (the stream's first
  // one repeats the state the page was served with) leaves them as they are, with a selection, a
  // Copied label or an intro the participant opened or closed.
  let shownIntro = null;
  let shownStep = null;
  let shownInstructions = null;

  function el(tag, cls, html) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (html !== undefined) e.innerHTML = html;
    return e;
  }

  function renderState(s) {
    // Another session at this address (a workshop's seat started again): its own page, afresh.
    if (session && s.session && s.session !== session) { location.reload(); return; }
    session = s.session || session;
    view = s.view;
    document.title = (s.step ? s.step.id + ' ' + s.step.title + ' — ' : '') + s.part_title;
    $('lab').textContent = s.lab_title;
    $('part').textContent = s.part + ': ' + s.part_title;
    const steps = $('steps');
    steps.replaceChildren(...s.steps.map((st) => {
      const li = el('li', st.state);
      li.textContent = st.id + ' ' + st.title;
      li.dataset.step = st.id;
      return li;
    }));
    $('parts').replaceChildren(...s.parts.map((p) => {
      const li = el('li', (p.done === p.steps ? 'done' : '') + (p.id === s.part ? ' this-part' : ''));
      li.textContent = p.id + ' ' + p.title + ' (' + p.done + '/' + p.steps + ')';
      return li;
    }));
    // The intro stays reachable (its exports are needed later): open before and at the first step.
    const intro = $('intro');
    const step = s.step ? s.step.id : '';
    const introHtml = s.intro.join('\n');
    if (!s.intro.length) {
      intro.replaceChildren();
    } else if (introHtml !== shownIntro) {
      const details = intro.querySelector('details') || el('details', 'intro');
      const summary = el('summary');
      summary.textContent = 'Introduction';
      details.replaceChildren(summary, ...s.intro.map((h) => el('div', 'shown', h)));
      intro.replaceChildren(details);
    }
    shownIntro = s.intro.length ? introHtml : null;
    if (s.intro.length && step !== shownStep) {
      intro.querySelector('details').open = !s.step || s.step.index === 1;
    }
    const article = $('step');
    if (s.step) {
      article.hidden = false;
      $('step-title').innerHTML = '';
      $('step-title').append('Step ' + s.step.id + ' — ' + s.step.title + ' ');
      const small = el('small');
      small.textContent = '(' + s.step.index + '/' + s.step.of + ')';
      $('step-title').append(small);
      if (s.step.html !== shownInstructions) {
        $('instructions').innerHTML = s.step.html;
        shownInstructions = s.step.html;
      }
    } else {
      article.hidden = true;
      shownInstructions = null;
    }
    shownStep = step;
    $('closing').replaceChildren(...s.closing.map((h) => el('div', 'shown', h)));
    // The whole log at once, scrolled once: a forced layout per entry made a reload of a long
    // session slow (300 verdicts: 150 ms).
    const log = $('log');
    log.replaceChildren(...s.log.slice(-MAX_LOG).map(logEntry));
    const last = [...log.querySelectorAll('.log.pass, .log.fail')].pop();
    if (last) last.scrollIntoView({ block: 'nearest' });
    renderDevtools(s.devtools);
    buttons = s.buttons;
    renderMenu();
    if (s.shell) renderShell(s.shell);
    renderStatus(s.status);
    // For benches/web.rs: when the page first became usable (rendered, with its menu).
    if (!performance.getEntriesByName('lab-usable').length) performance.mark('lab-usable');
  }

  // Chrome DevTools through this page's server (web/devtools.rs): the address is made from where
  // the page is served, since behind a workshop its host, path and https are the workshop's. The
  // WebSocket's address is relative to the page, like every other address the page uses.
  function devtoolsAddress() {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const folder = location.pathname.replace(/[^/]*$/, '');
    const socket = location.host + folder + 'inspector?token=' + encodeURIComponent(token);
    // DevTools reads its `ws`/`wss` parameter decoded (URLSearchParams): our own query's ? = &
    // are escaped so they stay inside that value; / and : are kept readable.
    const value = encodeURIComponent(socket).replace(/%2F/gi, '/').replace(/%3A/gi, ':');
    return 'devtools://devtools/bundled/inspector.html?' + scheme + '=' + value;
  }

  function renderDevtools(offered) {
    const box = $('devtools');
    box.hidden = !offered;
    if (!offered || box.dataset.address) return;
    const address = devtoolsAddress();
    box.dataset.address = address;
    $('devtools-url').textContent = address;
    $('devtools-copy').dataset.copy = address;
  }

  // As many log entries as the runner keeps (state.rs MAX_LOG).
  const MAX_LOG = 400;
  function logEntry(item) {
    return el('div', 'log ' + item.class, item.html);
  }

  function appendLog(item) {
    const log = $('log');
    log.append(logEntry(item));
    if (shell) addToTerminalButtons(log.lastElementChild);
    while (log.childElementCount > MAX_LOG) log.firstElementChild.remove();
    if (item.class === 'pass' || item.class === 'fail') {
      log.lastElementChild.scrollIntoView({ block: 'nearest' });
    }
  }

  function renderMenu() {
    $('menu').replaceChildren(...buttons.map((b) => {
      const button = el('button');
      button.type = 'button';
      button.dataset.action = b.action;
      button.append(b.label);
      const kbd = el('kbd');
      kbd.textContent = b.key;
      button.append(kbd);
      button.addEventListener('click', () => act(b.action));
      return button;
    }));
    enableMenu();
  }

  function enableMenu() {
    for (const button of $('menu').querySelectorAll('button')) {
      const always = view === 'demo';
      button.disabled = !!status.ended || !(always || status.waiting);
      if (button.dataset.action === 'pause') button.firstChild.textContent = status.paused ? 'Resume' : 'Pause';
    }
  }

  function renderStatus(st) {
    const asked = st.question && st.question !== status.question;
    status = st;
    const form = $('question');
    form.hidden = !st.question;
    if (st.question) {
      $('question-text').textContent = st.question;
      if (asked) { $('answer').value = ''; $('answer').focus(); }
    }
    let text = st.ended || st.busy || (st.waiting ? (view === 'demo' ? 'waiting for Next' : 'your turn') : 'working…');
    if (st.paused) text += ' · paused';
    $('status').textContent = text;
    enableMenu();
  }

  $('question').addEventListener('submit', (e) => {
    e.preventDefault();
    act('answer', $('answer').value);
  });

  async function act(action, answer) {
    if (view === 'start' && action !== 'answer') { status.waiting = false; enableMenu(); }
    try {
      const body = { action: action };
      if (answer !== undefined) body.answer = answer;
      const r = await fetch('action', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-Lab-Token': token },
        body: JSON.stringify(body),
      });
      if (!r.ok) $('status').textContent = (await r.text()).trim();
    } catch (e) {
      $('status').textContent = 'lab-runner is not answering: ' + e;
    }
  }

  // Copy buttons: the code block's text, or the address a button carries.
  document.addEventListener('click', async (e) => {
    const button = e.target.closest('button.copy');
    if (!button) return;
    const text = button.dataset.copy || button.parentElement.querySelector('pre').innerText;
    try {
      // A browser may leave the clipboard's promise pending (a page without focus, a permission
      // it has not settled): after a second, copy the selection instead.
      await Promise.race([
        navigator.clipboard.writeText(text),
        new Promise((_, reject) => setTimeout(() => reject(new Error('clipboard timed out')), 1000)),
      ]);
    } catch (_) {
      const range = document.createRange();
      range.selectNodeContents(button.parentElement.querySelector('pre, code'));
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      document.execCommand('copy');
    }
    button.classList.add('copied');
    button.textContent = 'Copied';
    // Stays after the label goes back (how many times this block was copied).
    button.dataset.copies = String(Number(button.dataset.copies || 0) + 1);
    setTimeout(() => { button.classList.remove('copied'); button.textContent = 'Copy'; }, 1500);
  });

  // The terminal's keys.
  document.addEventListener('keydown', (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || e.target.closest('input, textarea')) return;
    const b = buttons.find((x) => x.key === e.key.toLowerCase());
    if (!b) return;
    const button = $('menu').querySelector('button[data-action="' + b.action + '"]');
    if (button && !button.disabled) { e.preventDefault(); act(b.action); }
  });

  // The terminal panel (start --web --shell): commands run on the lab's machine, in the session's
  // participant terminal ("do it for me" types there too). Built only when the session has one.
  let shell = null;
  let termTab = 'main';
  // As many lines as the runner keeps per terminal (state.rs MAX_TERMINAL_LINES).
  const MAX_TERM_LINES = 500;

  function ensurePanel() {
    if ($('terminal')) return;
    const panel = el('section');
    panel.id = 'terminal';
    panel.setAttribute('aria-label', 'Your terminal on the lab machine');
    const tabs = el('div');
    tabs.id = 'term-tabs';
    tabs.setAttribute('role', 'tablist');
    const out = el('pre');
    out.id = 'term-out';
    const form = el('form');
    form.id = 'term-form';
    const input = el('textarea');
    input.id = 'term-input';
    input.rows = 2;
    input.spellcheck = false;
    input.setAttribute('autocomplete', 'off');
    input.setAttribute('aria-label', 'Command: Enter runs it, Shift+Enter starts a new line');
    input.placeholder = 'Type a command: Enter runs it, Shift+Enter starts a new line';
    const run = el('button');
    run.type = 'submit';
    run.id = 'term-run';
    run.textContent = 'Run';
    const fresh = el('button');
    fresh.type = 'button';
    fresh.id = 'term-new';
    fresh.textContent = 'Run in a new terminal';
    fresh.title = 'For a command that keeps running (a tunnel): Ctrl-C ends it';
    const ctrlc = el('button');
    ctrlc.type = 'button';
    ctrlc.id = 'term-ctrlc';
    ctrlc.textContent = 'Ctrl-C';
    const note = el('p');
    note.id = 'term-note';
    note.setAttribute('role', 'status');
    const row = el('div', 'term-buttons');
    row.append(run, fresh, ctrlc);
    form.append(input, row);
    panel.append(tabs, out, form, note);
    $('menu').after(panel);
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        runTyped(false);
      } else if (e.key === 'c' && e.ctrlKey && input.selectionStart === input.selectionEnd) {
        e.preventDefault();
        interruptTab();
      }
    });
    form.addEventListener('submit', (e) => { e.preventDefault(); runTyped(false); });
    fresh.addEventListener('click', () => runTyped(true));
    ctrlc.addEventListener('click', interruptTab);
  }

  function terminalNamed(name) {
    let t = shell.terminals.find((x) => x.name === name);
    if (!t) {
      t = { name: name, running: null, ended: 0, last: null, lines: [] };
      shell.terminals.push(t);
    }
    return t;
  }

  function renderShell(sh) {
    shell = sh;
    ensurePanel();
    if (!shell.terminals.some((t) => t.name === termTab)) termTab = 'main';
    renderTabs();
    renderTermOut();
    for (const part of [$('intro'), $('instructions'), $('log'), $('closing')]) addToTerminalButtons(part);
  }

  function renderTabs() {
    $('term-tabs').replaceChildren(...shell.terminals.map((t) => {
      const tab = el('button', 'term-tab' + (t.running ? ' running' : ''));
      tab.type = 'button';
      tab.setAttribute('role', 'tab');
      tab.setAttribute('aria-selected', String(t.name === termTab));
      tab.dataset.terminal = t.name;
      tab.textContent = (t.name === 'main' ? 'main terminal' : 'terminal ' + t.name) + (t.running ? ' ●' : '');
      tab.title = t.running ? 'running: ' + t.running : (t.last || 'idle');
      tab.addEventListener('click', () => { termTab = t.name; renderTabs(); renderTermOut(); });
      return tab;
    }));
    const t = terminalNamed(termTab);
    $('term-ctrlc').disabled = !t.running;
    $('term-note').textContent = t.running
      ? 'running: ' + t.running.split('\n')[0] + (t.name === 'main' ? '' : ' (Ctrl-C ends it)')
      : (t.last ? 'last command: ' + t.last : '');
  }

  function renderTermOut() {
    const out = $('term-out');
    out.textContent = terminalNamed(termTab).lines.join('\n');
    out.scrollTop = out.scrollHeight;
  }

  function terminalChange(c) {
    if (!shell) return;
    const t = terminalNamed(c.name);
    t.lines.push(...c.lines);
    const over = t.lines.length - MAX_TERM_LINES;
    if (over > 0) t.lines.splice(0, over);
    const structural = t.running !== c.running || t.ended !== c.ended;
    t.running = c.running;
    t.ended = c.ended;
    t.last = c.last;
    if (c.name === termTab) {
      const out = $('term-out');
      const atEnd = out.scrollTop + out.clientHeight >= out.scrollHeight - 4;
      if (over > 0) {
        renderTermOut();
      } else if (c.lines.length) {
        out.append((out.textContent ? '\n' : '') + c.lines.join('\n'));
        if (atEnd) out.scrollTop = out.scrollHeight;
      }
    }
    if (structural || !$('term-tabs').querySelector('[data-terminal="' + CSS.escape(c.name) + '"]')) renderTabs();
  }

  async function shellPost(body) {
    try {
      const r = await fetch('shell', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-Lab-Token': token },
        body: JSON.stringify(body),
      });
      return { ok: r.ok, text: (await r.text()).trim() };
    } catch (e) {
      return { ok: false, text: 'lab-runner is not answering: ' + e };
    }
  }

  async function runTyped(inNew) {
    const input = $('term-input');
    const text = input.value;
    if (!text.trim()) return;
    const body = { run: text };
    if (inNew) body.terminal = 'new';
    // Cleared at once, as a terminal does on Enter (what is typed meanwhile is the next command);
    // given back when the command was refused.
    input.value = '';
    const r = await shellPost(body);
    if (!r.ok) {
      $('term-note').textContent = r.text;
      if (!input.value) input.value = text;
      return;
    }
    const started = /terminal `([^`]+)`/.exec(r.text);
    if (started) {
      termTab = started[1];
      terminalNamed(termTab);
      renderTabs();
      renderTermOut();
    }
  }

  async function interruptTab() {
    const r = await shellPost({ interrupt: termTab });
    if (!r.ok) $('term-note').textContent = r.text;
  }

  // "To terminal": a code block's text into the terminal's input; the participant reads it and
  // presses Enter themselves.
  function addToTerminalButtons(root) {
    if (!root) return;
    for (const block of root.querySelectorAll('.code:not(.no-run)')) {
      if (block.querySelector('button.to-term')) continue;
      const b = el('button', 'to-term');
      b.type = 'button';
      b.title = 'Put this in the terminal below (then press Enter)';
      b.textContent = 'To terminal';
      block.classList.add('has-term');
      block.append(b);
    }
  }
  document.addEventListener('click', (e) => {
    const button = e.target.closest('button.to-term');
    if (!button) return;
    const input = $('term-input');
    input.value = button.parentElement.querySelector('pre').innerText.replace(/\n$/, '');
    input.focus();
    input.scrollIntoView({ block: 'nearest' });
  });

  // The presenter's charts: the last minutes of the app's metrics.
  const series = {};
  const WINDOW_MS = 5 * 60 * 1000;
  function chart(name, title, unit) {
    if (series[name]) return series[name];
    const box = el('div', 'chart');
    box.dataset.name = name;
    const h = el('h3');
    h.append(title);
    const value = el('span');
    h.append(value);
    const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
    svg.setAttribute('viewBox', '0 0 300 100');
    svg.setAttribute('preserveAspectRatio', 'none');
    const line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
    svg.append(line);
    box.append(h, svg);
    $('charts').append(box);
    $('charts').hidden = false;
    return (series[name] = { points: [], line: line, value: value, unit: unit });
  }
  function format(v, unit) {
    if (unit === 'bytes') return (v / 1048576).toFixed(1) + ' MB';
    if (unit === 'ms') return v.toFixed(0) + ' ms';
    return String(v);
  }
  function metrics(sample) {
    for (const m of sample.metrics) {
      const s = chart(m.name, m.title, m.unit);
      s.points.push([sample.t, m.value]);
      while (s.points.length && s.points[0][0] < sample.t - WINDOW_MS) s.points.shift();
      // The x axis spans what there is (at least a minute, at most the window).
      const span = Math.max(60 * 1000, sample.t - s.points[0][0]);
      const max = Math.max(1, ...s.points.map((p) => p[1])) * 1.1;
      s.line.setAttribute('points', s.points.map((p) =>
        (300 - (sample.t - p[0]) / span * 300).toFixed(1) + ',' + (100 - p[1] / max * 100).toFixed(1)).join(' '));
      s.value.textContent = format(m.value, m.unit);
      s.value.parentElement.parentElement.dataset.value = m.value;
    }
  }

  // The state the page was served with: shown at once; the stream then brings it up to date.
  const initial = $('initial-state');
  if (initial) {
    try {
      const s = JSON.parse(initial.textContent);
      if (s) renderState(s);
    } catch (e) {
      $('status').textContent = 'the page could not read its state: ' + e;
    }
  }

  const stream = new EventSource('events?token=' + encodeURIComponent(token));
  stream.addEventListener('state', (e) => renderState(JSON.parse(e.data)));
  stream.addEventListener('log', (e) => appendLog(JSON.parse(e.data)));
  stream.addEventListener('status', (e) => renderStatus(JSON.parse(e.data)));
  stream.addEventListener('metrics', (e) => metrics(JSON.parse(e.data)));
  stream.addEventListener('terminal', (e) => terminalChange(JSON.parse(e.data)));
  // After the session: the address is asked now and then whether a new session answers there (a
  // workshop's seat is started again at the same address, on the part that comes next); the page
  // reloads into it, so the participant need not type the address again.
  const FOLLOW_EVERY_MS = 2000;
  const FOLLOW_FOR_MS = 30 * 60 * 1000;
  let following = null;
  // `same`: the session that was here will do too (its stream was lost, not ended).
  function followNext(same) {
    if (following) return;
    const since = Date.now();
    following = setInterval(async () => {
      if (Date.now() - since > FOLLOW_FOR_MS) { clearInterval(following); return; }
      try {
        const r = await fetch('state?token=' + encodeURIComponent(token), { cache: 'no-store' });
        if (!r.ok) return;
        const s = await r.json();
        if (s.session && (same || s.session !== session)) { clearInterval(following); location.reload(); }
      } catch (_) { /* not answering yet */ }
    }, FOLLOW_EVERY_MS);
  }

  // The session is over: no reconnecting to a runner that has gone; a next one is looked for.
  stream.addEventListener('end', () => {
    stream.close();
    document.body.dataset.stream = 'closed';
    if (!status.ended) renderStatus(Object.assign({}, status, { ended: 'the session has ended' }));
    followNext(false);
  });
  stream.addEventListener('error', () => {
    // A stream refused (through a workshop: its seat not answering) is not tried again by the
    // browser: the address is then asked until a session answers.
    const closed = stream.readyState === EventSource.CLOSED;
    if (closed) { stream.close(); followNext(true); }
    if (!status.ended) $('status').textContent = 'lab-runner is not answering (' + (closed ? 'waiting for it…' : 'reconnecting…') + ')';
  });
})();
