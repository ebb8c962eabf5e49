// Runs the page's script (argv[2]) in node against a stand-in for the browser: a DOM where every
// element is a stub, an EventSource the scenario drives, a fetch that answers what the scenario
// says, timers run by hand and a `location.reload` that is counted. Prints each scenario's reloads.
'use strict';
const fs = require('fs');
const vm = require('vm');
const source = fs.readFileSync(process.argv[2], 'utf8');

// An element, a list, a style, anything: every property is one more stub, every call returns one.
function stub() {
  const target = function () {};
  const proxy = new Proxy(target, {
    get(_, key) {
      if (key === Symbol.iterator) return function* () {};
      if (key === Symbol.toPrimitive) return () => '';
      if (key === 'then') return undefined;
      return proxy;
    },
    set() { return true; },
    apply() { return proxy; },
    construct() { return proxy; },
  });
  return proxy;
}

function run(scenario) {
  const world = { reloads: 0, answer: null, timers: [], stream: null };
  class EventSource {
    constructor(url) { this.url = url; this.listeners = {}; this.readyState = 1; world.stream = this; }
    addEventListener(name, f) { (this.listeners[name] = this.listeners[name] || []).push(f); }
    close() { this.readyState = 2; }
    emit(name, data) {
      for (const f of this.listeners[name] || []) f({ data: data === undefined ? '' : JSON.stringify(data) });
    }
  }
  EventSource.CLOSED = 2;
  const document = stub();
  const context = {
    document: new Proxy({}, {
      get(_, key) {
        if (key === 'getElementById') return (id) => (id === 'initial-state' ? null : stub());
        return document[key];
      },
    }),
    location: { search: '?token=t', protocol: 'https:', host: 'h', pathname: '/seat/1/', reload() { world.reloads++; } },
    EventSource,
    performance,
    URLSearchParams,
    JSON, Object, Date, Math, Number, String, Array, Promise,
    setTimeout() {},
    setInterval(f) { world.timers.push(f); return world.timers.length; },
    clearInterval(n) { world.timers[n - 1] = null; },
    fetch: async () => {
      if (world.answer === null) throw new Error('not answering');
      const a = world.answer;
      return { ok: a.ok, json: async () => a.state };
    },
    navigator: stub(),
    getSelection: stub(),
    console,
  };
  vm.createContext(context);
  vm.runInContext(source, context);
  const tick = async () => {
    for (const f of world.timers.filter(Boolean)) await f();
  };
  return scenario(world, tick).then(() => world.reloads);
}

function state(session) {
  return {
    session, view: 'start', lab_title: 'L', part: 'part1', part_title: 'P', parts: [], steps: [],
    intro: [], step: null, closing: [], log: [], buttons: [], status: { waiting: true }, devtools: false,
  };
}

const scenarios = {
  // The session ended; its own server still answers a moment, then nothing, then a seat that is
  // not up yet (502), then the next session: the page reloads once, into the next one.
  ended_then_next: async (w, tick) => {
    w.stream.emit('state', state('a'));
    w.stream.emit('end');
    w.answer = { ok: true, state: state('a') };
    await tick();
    w.answer = null;
    await tick();
    w.answer = { ok: false, state: null };
    await tick();
    w.answer = { ok: true, state: state('b') };
    await tick();
    await tick();
  },
  // The session ended and nothing comes after it: the page stays.
  ended_for_good: async (w, tick) => {
    w.stream.emit('state', state('a'));
    w.stream.emit('end');
    w.answer = { ok: true, state: state('a') };
    await tick();
    w.answer = null;
    await tick();
  },
  // The stream was refused (the workshop's 502 while the seat starts again): whatever session
  // answers next is taken.
  refused_then_answers: async (w, tick) => {
    w.stream.emit('state', state('a'));
    w.stream.readyState = 2;
    w.stream.emit('error');
    w.answer = null;
    await tick();
    w.answer = { ok: true, state: state('a') };
    await tick();
  },
  // The stream reconnected by itself, to another session.
  reconnected_to_another: async (w) => {
    w.stream.emit('state', state('a'));
    w.stream.emit('state', state('a'));
    w.stream.emit('error');
    w.stream.emit('state', state('b'));
  },
};

(async () => {
  const out = {};
  for (const [name, scenario] of Object.entries(scenarios)) out[name] = await run(scenario);
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
