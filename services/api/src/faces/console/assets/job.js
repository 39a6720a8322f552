// #/jobs/<id>: one job — status and progress (live), timing, parameters, trace id, error,
// output previews (fetched with the key, shown through blob: URLs), downloads, and its
// webhook deliveries with every attempt; cancel while it is queued or running, redeliver.

import { api, fetchBlob, download, ApiError } from './api.js';
import { h, fill, badge, progressBar, when, duration, bytes, announce, alertBox, LIVE_STATUSES } from './dom.js';
import { feed } from './feed.js';

export async function jobPage(main, route) {
  const id = route.path[1];
  const urls = [];
  const alive = { value: true };
  let job;
  try {
    job = await api(`/api/v1/jobs/${encodeURIComponent(id)}`);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return notFound(main, id);
    throw err;
  }
  document.title = `${id} · Atelier console`;

  const error = alertBox();
  const statusLine = h('p', { class: 'row', id: 'job-status-line' });
  const actions = h('div', { class: 'row', id: 'job-actions' });
  const failure = h('div', { id: 'job-error' });
  const timing = h('dl', { class: 'facts', id: 'job-timing' });
  const facts = h('dl', { class: 'facts', id: 'job-facts' });
  const params = h('pre', { id: 'job-params' });
  const outputs = h('div', { class: 'outputs', id: 'job-outputs' });
  const webhooks = h('div', { id: 'job-webhooks' });
  let outputsShown = null;

  fill(main,
    h('p', {}, h('a', { href: '#/jobs' }, '← All jobs')),
    h('h1', {}, 'Job ', h('span', { class: 'mono', id: 'job-id' }, id)),
    statusLine, actions, error, failure,
    h('section', { class: 'panel', 'aria-labelledby': 'h-outputs' }, h('h2', { id: 'h-outputs' }, 'Outputs'), outputs),
    h('section', { class: 'panel', 'aria-labelledby': 'h-timing' }, h('h2', { id: 'h-timing' }, 'Timing'), timing),
    h('section', { class: 'panel', 'aria-labelledby': 'h-facts' }, h('h2', { id: 'h-facts' }, 'Details'), facts),
    h('section', { class: 'panel', 'aria-labelledby': 'h-params' }, h('h2', { id: 'h-params' }, 'Parameters'), params),
    h('section', { class: 'panel', 'aria-labelledby': 'h-webhooks' }, h('h2', { id: 'h-webhooks' }, 'Webhook deliveries'), webhooks));

  function paint() {
    const step = job.progress?.step;
    fill(statusLine,
      h('span', { id: 'job-status', 'data-status': job.status }, badge(job.status)),
      progressBar(job.progress?.percent, 'Job progress'),
      h('span', { id: 'job-step' }, `${job.progress?.percent ?? 0}%${step ? ` · ${step}` : ''}`));
    fill(actions);
    if (LIVE_STATUSES.includes(job.status)) {
      actions.append(h('button', { type: 'button', class: 'danger', id: 'cancel', onclick: cancel }, 'Cancel job'));
    }
    fill(failure, job.error ? h('div', { class: 'alert', role: 'alert' },
      h('strong', {}, 'Failed: '), h('code', { id: 'job-error-code' }, job.error.code), ' — ',
      h('span', { id: 'job-error-message' }, job.error.message)) : null);
    fill(timing,
      fact('Created (queued)', when(job.createdAt)),
      fact('Started (running)', job.startedAt ? [when(job.startedAt), wait(job.createdAt, job.startedAt, 'after creation')] : '—'),
      fact('Finished', job.finishedAt ? [when(job.finishedAt), wait(job.startedAt ?? job.createdAt, job.finishedAt, 'running')] : '—'),
      fact('Last change', when(job.updatedAt)),
      LIVE_STATUSES.includes(job.status) ? fact('Expires if still queued', when(job.expiresAt)) : null);
    fill(facts,
      fact('Capability', job.capability),
      job.modelId ? fact('Model', job.modelId) : null,
      job.engine ? fact('Engine', `${job.engine.provider ?? ''} ${job.engine.model ?? ''}`.trim()) : null,
      fact('Attempts', `${job.attempts} of ${job.maxAttempts}`),
      fact('Trace id', job.traceId ? h('code', { id: 'job-trace' }, job.traceId) : '—'),
      fact('Request id', job.requestId ? h('code', {}, job.requestId) : '—'),
      fact('Credits', `${job.billing.charged} charged, ${job.billing.refunded} refunded (${job.billing.outcome.replaceAll('_', ' ')})`),
      fact('Webhook URL', job.webhookUrl ? h('code', {}, job.webhookUrl) : 'none'));
    params.textContent = JSON.stringify(job.params, null, 2);
    const key = job.outputAssetIds.join(',');
    if (key !== outputsShown) {
      outputsShown = key;
      showOutputs();
    }
  }

  async function showOutputs() {
    if (job.outputAssetIds.length === 0) {
      fill(outputs, h('p', { class: 'muted' }, job.status === 'succeeded' ? 'No outputs.' : 'Outputs appear when the job succeeds.'));
      return;
    }
    fill(outputs);
    for (const assetId of job.outputAssetIds) {
      const card = h('figure', { class: 'output', 'data-asset-id': assetId }, h('p', { class: 'muted' }, 'Loading…'));
      outputs.append(card);
      try {
        const asset = await api(`/api/v1/assets/${encodeURIComponent(assetId)}`);
        const blob = await fetchBlob(asset.url);
        if (!alive.value) return;
        const url = URL.createObjectURL(blob);
        urls.push(url);
        const label = `${asset.name}${asset.width ? `, ${asset.width}×${asset.height}` : ''}`;
        let media;
        if (asset.kind === 'video') media = h('video', { src: url, controls: true, preload: 'metadata', 'aria-label': label });
        else if (asset.kind === 'audio') media = h('audio', { src: url, controls: true, 'aria-label': label });
        else if (asset.contentType.startsWith('image/')) media = h('img', { src: url, alt: `Output ${label}`, class: 'preview' });
        fill(card, media,
          h('figcaption', {},
            h('span', { class: 'step' }, `${label} · ${asset.contentType} · ${bytes(asset.size)}`),
            h('button', {
              type: 'button', class: 'quiet download',
              onclick: () => download(asset.url, asset.name).catch((err) => error.show(err.message)),
              'aria-label': `Download ${asset.name}`,
            }, 'Download')));
      } catch (err) {
        fill(card, h('p', { class: 'alert' }, `Could not load ${assetId}: ${err.message}`));
      }
    }
  }

  async function loadWebhooks() {
    if (!job.webhookUrl) {
      fill(webhooks, h('p', { class: 'muted' }, 'This job has no webhook URL.'));
      return;
    }
    try {
      const log = await api(`/api/v1/jobs/${encodeURIComponent(id)}/webhooks`);
      if (!alive.value) return;
      fill(webhooks, log.deliveries.length === 0 ? h('p', { class: 'muted' }, 'No webhook events yet.') : null,
        log.deliveries.map(delivery),
        redeliverControls());
    } catch (err) {
      fill(webhooks, h('p', { class: 'alert' }, `Could not load the deliveries: ${err.message}`));
    }
  }

  function delivery(d) {
    return h('div', { class: 'delivery' },
      h('p', {}, h('code', {}, d.eventId), ' · ', h('strong', {}, d.status),
        d.nextAttemptAt ? [' · next attempt ', when(d.nextAttemptAt)] : null),
      h('div', { class: 'table-wrap' }, h('table', { class: 'cards attempts' },
        h('caption', { class: 'visually-hidden' }, `Attempts of ${d.eventId}`),
        h('thead', {}, h('tr', {}, ['Attempt', 'At', 'Status code', 'Latency', 'Error'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, d.attempts.map((a) => h('tr', { 'data-attempt': a.attempt },
          h('td', { 'data-label': 'Attempt' }, a.attempt),
          h('td', { 'data-label': 'At' }, when(a.at)),
          h('td', { 'data-label': 'Status code', class: 'code' }, a.statusCode ?? '—'),
          h('td', { 'data-label': 'Latency' }, `${a.latencyMs} ms`),
          h('td', { 'data-label': 'Error' }, a.error ?? '—')))))));
  }

  function redeliverControls() {
    const result = h('span', { id: 'redeliver-result', role: 'status' });
    const button = h('button', { type: 'button', class: 'quiet', id: 'redeliver' }, 'Redeliver webhooks');
    button.addEventListener('click', async () => {
      button.disabled = true;
      try {
        await api(`/api/v1/jobs/${encodeURIComponent(id)}/webhooks/redeliver`, { method: 'POST' });
        result.textContent = 'Redelivery asked: one more attempt per event, shown here once made.';
      } catch (err) {
        result.textContent = err.message;
      } finally {
        button.disabled = false;
      }
    });
    return h('p', { class: 'row' }, button, result);
  }

  async function cancel(event) {
    event.target.disabled = true;
    try {
      const answer = await api(`/api/v1/jobs/${encodeURIComponent(id)}/cancel`, { method: 'POST' });
      job = answer.job;
      paint();
      announce(`Job ${id} cancelled`);
    } catch (err) {
      error.show(`Cancel refused: ${err.message}`);
      await refresh();
    }
  }

  let pending = null;
  async function refresh() {
    try {
      const fresh = await api(`/api/v1/jobs/${encodeURIComponent(id)}`);
      if (!alive.value) return;
      const before = job.status;
      job = fresh;
      paint();
      if (before !== job.status) announce(`Job ${id} is ${job.status}`);
    } catch (err) {
      error.show(`Could not refresh the job: ${err.message}`);
    }
  }

  const off = feed.on((event) => {
    if (event.type === 'poll') {
      if (job.webhookUrl) loadWebhooks();
      return;
    }
    if (event.jobId !== id) return;
    if (event.type === 'webhook.attempt') {
      loadWebhooks();
      return;
    }
    // Progress comes often: one refresh at a time, the last one after the burst.
    clearTimeout(pending);
    pending = setTimeout(async () => {
      const before = job.status;
      await refresh();
      if (before !== job.status) loadWebhooks();
    }, 100);
  });

  paint();
  loadWebhooks();
  return () => {
    alive.value = false;
    off();
    clearTimeout(pending);
    urls.forEach((url) => URL.revokeObjectURL(url));
  };
}

function fact(term, value) {
  return [h('dt', {}, term), h('dd', {}, value)];
}

function wait(from, to, what) {
  const took = duration(from, to);
  return took ? h('span', { class: 'muted' }, ` (${took} ${what})`) : null;
}

function notFound(main, id) {
  document.title = 'Not found · Atelier console';
  fill(main,
    h('h1', { id: 'not-found' }, 'Not found'),
    h('p', {}, 'There is no job ', h('code', {}, id), ' for this key.'),
    h('p', {}, h('a', { href: '#/jobs' }, 'Back to the jobs')));
}
