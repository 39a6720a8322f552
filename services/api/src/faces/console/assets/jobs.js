// #/jobs: this client's jobs, newest first, with the API's filters (status, capability) and
// its paging (`before` = the previous page's `nextBefore`). Rows follow the live feed; a job
// created meanwhile (on any face: tasks and creations are jobs too) is added at the top.

import { api } from './api.js';
import { h, fill, badge, progressBar, when, announce, alertBox, STATUSES } from './dom.js';
import { feed } from './feed.js';

const PAGE = 25;

export async function jobsPage(main, route) {
  document.title = 'Jobs · Atelier console';
  const filters = { status: route.query.get('status') ?? '', capability: route.query.get('capability') ?? '' };
  const error = alertBox();
  const body = h('tbody', { id: 'jobs-body' });
  const table = h('table', { class: 'cards jobs', id: 'jobs' },
    h('caption', { class: 'visually-hidden' }, 'Jobs, newest first'),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, 'Job'),
      h('th', { scope: 'col' }, 'Capability'),
      h('th', { scope: 'col' }, 'Status'),
      h('th', { scope: 'col' }, 'Progress'),
      h('th', { scope: 'col' }, 'Created'))),
    body);
  const empty = h('p', { class: 'muted', id: 'jobs-empty', hidden: true }, 'No jobs yet. ',
    h('a', { href: '#/create' }, 'Create one.'));
  const more = h('button', { type: 'button', class: 'quiet', id: 'jobs-more', hidden: true }, 'Load more');
  const rows = new Map();
  let next = null;

  const statusSelect = h('select', { id: 'filter-status', name: 'status' },
    h('option', { value: '' }, 'Any status'),
    STATUSES.map((s) => h('option', { value: s }, s)));
  const capabilitySelect = h('select', { id: 'filter-capability', name: 'capability' },
    h('option', { value: '' }, 'Any capability'));
  statusSelect.value = filters.status;

  fill(main,
    h('div', { class: 'row spread' }, h('h1', {}, 'Jobs'), h('a', { class: 'button', href: '#/create' }, 'Create job')),
    h('form', { class: 'filters panel', id: 'job-filters', role: 'search', 'aria-label': 'Filter jobs' },
      h('div', { class: 'field' }, h('label', { for: 'filter-status' }, 'Status'), statusSelect),
      h('div', { class: 'field' }, h('label', { for: 'filter-capability' }, 'Capability'), capabilitySelect)),
    error,
    h('div', { class: 'table-wrap' }, table),
    empty,
    more);

  api('/api/v1/capabilities').then(({ capabilities }) => {
    for (const c of capabilities) capabilitySelect.append(h('option', { value: c.capability }, c.capability));
    capabilitySelect.value = filters.capability;
  }).catch(() => {});

  const query = () => {
    const params = new URLSearchParams();
    if (filters.status) params.set('status', filters.status);
    if (filters.capability) params.set('capability', filters.capability);
    return params;
  };

  async function load(reset) {
    const params = query();
    params.set('limit', PAGE);
    if (!reset && next) params.set('before', next);
    try {
      const list = await api(`/api/v1/jobs?${params}`);
      if (reset) { body.replaceChildren(); rows.clear(); }
      for (const job of list.jobs) if (!rows.has(job.id)) body.append(row(job));
      next = list.nextBefore ?? null;
      more.hidden = !next;
      empty.hidden = rows.size > 0;
      error.show('');
      // When the first page is on screen, for anyone timing the console (the browser test).
      if (reset) performance.mark('atelier:jobs-listed');
    } catch (err) {
      error.show(`Could not load the jobs: ${err.message}`);
    }
  }

  function row(job) {
    const progress = h('td', { 'data-label': 'Progress' });
    const status = h('td', { 'data-label': 'Status', class: 'status' });
    const tr = h('tr', { 'data-job-id': job.id },
      h('td', { 'data-label': 'Job' }, h('a', { href: `#/jobs/${job.id}`, class: 'mono' }, job.id)),
      h('td', { 'data-label': 'Capability' }, job.capability),
      status,
      progress,
      h('td', { 'data-label': 'Created' }, when(job.createdAt)));
    const entry = { tr, status, progress, job: { ...job } };
    rows.set(job.id, entry);
    paint(entry);
    return tr;
  }

  function paint(entry) {
    const { job } = entry;
    entry.tr.dataset.status = job.status;
    fill(entry.status, badge(job.status), job.error ? h('span', { class: 'step' }, job.error.code) : null);
    const step = job.progress?.step;
    fill(entry.progress, progressBar(job.progress?.percent, `${job.id} progress`),
      step ? h('span', { class: 'step' }, step) : null);
  }

  function matches(job) {
    return (!filters.status || job.status === filters.status)
      && (!filters.capability || job.capability === filters.capability);
  }

  /** Puts a job's row where the list's order (newest first) has it; not when it is older
   * than every row shown and more pages follow (it belongs to one of them). Jobs created close
   * together can be fetched out of order, so a new row does not always go on top. */
  function place(job) {
    const newer = (a, b) => {
      const [ta, tb] = [Date.parse(a.createdAt), Date.parse(b.createdAt)];
      return ta > tb || (ta === tb && a.id > b.id);
    };
    const after = [...body.children].find((tr) => newer(job, rows.get(tr.dataset.jobId).job));
    if (!after && next) return false;
    body.insertBefore(row(job), after ?? null);
    return true;
  }

  async function onEvent(event) {
    if (!event.jobId || event.type === 'webhook.attempt') return;
    const entry = rows.get(event.jobId);
    if (entry) {
      // A replayed or late event never moves a row back: the job's own updatedAt is newer.
      if (event.at && entry.job.updatedAt && Date.parse(event.at) < Date.parse(entry.job.updatedAt)) return;
      const before = entry.job.status;
      Object.assign(entry.job, {
        status: event.status ?? entry.job.status,
        updatedAt: event.at ?? entry.job.updatedAt,
        progress: { percent: event.progressPct ?? entry.job.progress?.percent, step: event.currentStep ?? undefined },
        error: event.error ?? entry.job.error,
      });
      paint(entry);
      if (before !== entry.job.status) announce(`Job ${event.jobId} is ${entry.job.status}`);
      return;
    }
    // A job this page does not show: add it on top when it is newer than every row.
    try {
      const job = await api(`/api/v1/jobs/${encodeURIComponent(event.jobId)}`);
      if (!rows.has(job.id)) {
        if (!matches(job) || !place(job)) return;
        empty.hidden = true;
        announce(`New job ${job.id}, ${job.status}`);
      }
      // Another event's fetch may have added the row first, with an older state: this event
      // still applies (and is ignored when the row is newer).
      onEvent(event);
    } catch {
      // Gone meanwhile (deleted by retention): nothing to show.
    }
  }

  const onFilter = () => {
    filters.status = statusSelect.value;
    filters.capability = capabilitySelect.value;
    const params = query().toString();
    history.replaceState(null, '', `#/jobs${params ? `?${params}` : ''}`);
    next = null;
    load(true);
  };
  statusSelect.addEventListener('change', onFilter);
  capabilitySelect.addEventListener('change', onFilter);
  more.addEventListener('click', () => load(false));

  const off = feed.on(onEvent);
  await load(true);
  return off;
}
