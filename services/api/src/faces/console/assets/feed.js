// The live feed of this client's job events, one per signed-in tab. It reads
// GET /api/v1/events/stream with fetch() (the key goes in the header), resumes after a drop
// with Last-Event-ID and a growing back-off, and hands each event to the open page.
// An api without the stream (404) is polled every 2 s instead.

import { api, rawRequest, session } from './api.js';
import { SseParser } from './sse.js';

const POLL_MS = 2000;
const MAX_BACKOFF_MS = 15_000;
/** The server sends a keep-alive every 15 s; silence for longer means a dead connection. */
const SILENCE_MS = 40_000;

const sleep = (ms, signal) => new Promise((resolve) => {
  const timer = setTimeout(resolve, ms);
  signal?.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
});

export class Feed {
  constructor() {
    this.handlers = new Set();
    this.stateHandlers = new Set();
    this.cursor = null;
    this.state = 'connecting';
    this.controller = null;
  }

  /** Calls `fn(event)` for every event until the returned function is called. */
  on(fn) {
    this.handlers.add(fn);
    return () => this.handlers.delete(fn);
  }

  onState(fn) {
    this.stateHandlers.add(fn);
    fn(this.state);
    return () => this.stateHandlers.delete(fn);
  }

  setState(state) {
    if (state === this.state) return;
    this.state = state;
    this.stateHandlers.forEach((fn) => fn(state));
  }

  emit(event) {
    for (const fn of [...this.handlers]) {
      try { fn(event); } catch (err) { console.warn('event handler failed', err); }
    }
  }

  start() {
    this.stop();
    this.controller = new AbortController();
    this.run(this.controller.signal);
  }

  stop() {
    this.controller?.abort();
    this.controller = null;
  }

  /** The feed starts where it stands now (`after=now`): a stream without a cursor would
   * replay it all. What settles meanwhile is passed on, then the stream takes over. */
  async catchUp(signal) {
    let after = 'now';
    for (;;) {
      const answer = await api(`/api/v1/events?limit=200&after=${encodeURIComponent(after)}`, { signal });
      answer.events.forEach((event) => this.emit(event));
      this.cursor = after = answer.next;
      if (!answer.hasMore) return;
    }
  }

  async run(signal) {
    let backoff = 500;
    while (!signal.aborted && session.key) {
      try {
        if (this.cursor === null) await this.catchUp(signal);
        const outcome = await this.stream(signal);
        if (outcome === 'missing') return this.poll(signal);
        if (outcome === 'refused') return this.setState('refused');
        if (outcome === 'read') backoff = 500;
      } catch (err) {
        if (signal.aborted) return;
        if (err?.status === 404) return this.poll(signal);
        if (err?.status === 401) return this.setState('refused');
      }
      if (signal.aborted) return;
      this.setState('reconnecting');
      await sleep(backoff + Math.random() * backoff * 0.3, signal);
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    }
  }

  /** One connection: resolves when it ends ('read' once anything was read). */
  async stream(signal) {
    const headers = { Accept: 'text/event-stream' };
    if (this.cursor) headers['Last-Event-ID'] = this.cursor;
    const connection = new AbortController();
    const stop = () => connection.abort();
    signal.addEventListener('abort', stop, { once: true });
    let watchdog = null;
    let read = false;
    const arm = () => { clearTimeout(watchdog); watchdog = setTimeout(stop, SILENCE_MS); };
    try {
      const response = await rawRequest('/api/v1/events/stream', { headers, signal: connection.signal });
      if (response.status === 404) return 'missing';
      if (response.status === 401) return 'refused';
      if (!response.ok || !response.body) return 'failed';
      this.setState('live');
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      const parser = new SseParser();
      arm();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        read = true;
        arm();
        for (const message of parser.push(decoder.decode(value, { stream: true }))) {
          if (message.id) this.cursor = message.id;
          let event;
          try { event = JSON.parse(message.data); } catch { continue; }
          event.type ??= message.event;
          this.emit(event);
        }
      }
      return read ? 'read' : 'failed';
    } catch (err) {
      if (signal.aborted) throw err;
      return read ? 'read' : 'failed';
    } finally {
      clearTimeout(watchdog);
      signal.removeEventListener('abort', stop);
    }
  }

  /** The fallback for an api without the stream: the newest jobs, compared every 2 s. */
  async poll(signal) {
    this.setState('polling');
    const seen = new Map();
    let first = true;
    while (!signal.aborted && session.key) {
      try {
        const { jobs } = await api('/api/v1/jobs?limit=50', { signal });
        for (const job of jobs) {
          if (seen.get(job.id) === job.updatedAt) continue;
          const known = seen.has(job.id);
          seen.set(job.id, job.updatedAt);
          if (first) continue;
          this.emit({
            type: known ? `job.${job.status}` : 'job.created',
            jobId: job.id, at: job.updatedAt, status: job.status, capability: job.capability,
            progressPct: job.progress.percent, currentStep: job.progress.step ?? null,
            attempt: job.attempts, error: job.error,
          });
        }
        first = false;
        this.emit({ type: 'poll' });
      } catch (err) {
        if (signal.aborted) return;
        if (err?.status === 401) return this.setState('refused');
      }
      await sleep(POLL_MS, signal);
    }
  }
}

export const feed = new Feed();
