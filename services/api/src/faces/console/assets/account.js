// The account pages: #/assets (list, thumbnails, delete), #/credits (balance and ledger),
// #/webhooks (the signing secret: revealed on demand, rotated with its overlap explained) and
// #/limits (the create rate and the queued and running caps).

import { api, fetchBlob } from './api.js';
import { h, fill, bytes, when, announce, alertBox } from './dom.js';

const THUMB_MAX_BYTES = 8 * 1024 * 1024;

export async function assetsPage(main) {
  document.title = 'Assets · Atelier console';
  const urls = [];
  const error = alertBox();
  const body = h('tbody', {});
  const more = h('button', { type: 'button', class: 'quiet', hidden: true }, 'Load more');
  let next = null;
  fill(main, h('h1', {}, 'Assets'),
    h('p', { class: 'muted' }, 'Your uploads and the outputs of your jobs. Retention deletes them when they expire.'),
    error,
    h('div', { class: 'table-wrap' }, h('table', { class: 'cards', id: 'assets' },
      h('caption', { class: 'visually-hidden' }, 'Assets, newest first'),
      h('thead', {}, h('tr', {}, ['Preview', 'Name', 'Kind', 'Size', 'Job', 'Created', ''].map((t) => h('th', { scope: 'col' }, t)))),
      body)),
    more);

  function row(asset) {
    const preview = h('td', { 'data-label': 'Preview' });
    if (asset.kind === 'image' && asset.size <= THUMB_MAX_BYTES) {
      const img = h('img', { class: 'thumb', alt: `Thumbnail of ${asset.name}` });
      preview.append(img);
      fetchBlob(asset.url).then((blob) => {
        const url = URL.createObjectURL(blob);
        urls.push(url);
        img.src = url;
      }).catch(() => img.remove());
    } else {
      preview.append(h('span', { class: 'muted' }, asset.kind));
    }
    const remove = h('button', { type: 'button', class: 'quiet', 'aria-label': `Delete ${asset.name}` }, 'Delete');
    const tr = h('tr', { 'data-asset-id': asset.id }, preview,
      h('td', { 'data-label': 'Name' }, asset.name, h('span', { class: 'step mono' }, asset.id)),
      h('td', { 'data-label': 'Kind' }, `${asset.kind} (${asset.role})`),
      h('td', { 'data-label': 'Size', class: 'nowrap' }, bytes(asset.size), asset.width ? h('span', { class: 'step' }, `${asset.width}×${asset.height}`) : null),
      h('td', { 'data-label': 'Job' }, asset.jobId ? h('a', { href: `#/jobs/${asset.jobId}`, class: 'mono' }, asset.jobId) : '—'),
      h('td', { 'data-label': 'Created' }, when(asset.createdAt)),
      h('td', { 'data-label': 'Actions' }, remove));
    let armed = false;
    remove.addEventListener('click', async () => {
      // Two steps instead of a blocking dialog: the button asks once more.
      if (!armed) {
        armed = true;
        remove.textContent = 'Confirm delete';
        remove.setAttribute('aria-label', `Confirm: delete ${asset.name}`);
        remove.classList.add('danger');
        return;
      }
      remove.disabled = true;
      try {
        await api(`/api/v1/assets/${encodeURIComponent(asset.id)}`, { method: 'DELETE' });
        tr.remove();
        announce(`Deleted ${asset.name}`);
      } catch (err) {
        error.show(`Could not delete ${asset.name}: ${err.message}`);
        remove.disabled = false;
      }
    });
    return tr;
  }

  async function load() {
    const params = new URLSearchParams({ limit: 50 });
    if (next) params.set('before', next);
    try {
      const list = await api(`/api/v1/assets?${params}`);
      body.append(...list.assets.map(row));
      next = list.nextBefore ?? null;
      more.hidden = !next;
      if (!body.children.length) body.append(h('tr', {}, h('td', { colspan: 7 }, 'No assets.')));
    } catch (err) {
      error.show(`Could not load the assets: ${err.message}`);
    }
  }
  more.addEventListener('click', load);
  await load();
  return () => urls.forEach((url) => URL.revokeObjectURL(url));
}

export async function creditsPage(main) {
  document.title = 'Credits · Atelier console';
  const credits = await api('/api/v1/credits?limit=200');
  fill(main, h('h1', {}, 'Credits'),
    h('section', { class: 'panel', 'aria-labelledby': 'h-balance' },
      h('h2', { id: 'h-balance' }, 'Balance'), h('p', { class: 'big', id: 'balance' }, credits.balance)),
    h('section', { class: 'panel', 'aria-labelledby': 'h-ledger' },
      h('h2', { id: 'h-ledger' }, 'Ledger'),
      h('p', { class: 'muted' }, 'The most recent entries, newest first. A failed, expired or cancelled job is refunded in full.'),
      h('div', { class: 'table-wrap' }, h('table', { class: 'cards', id: 'ledger' },
        h('thead', {}, h('tr', {}, ['When', 'Kind', 'Amount', 'Balance after', 'Job', 'Note'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, credits.entries.map((e) => h('tr', {},
          h('td', { 'data-label': 'When' }, when(e.createdAt)),
          h('td', { 'data-label': 'Kind' }, e.kind),
          h('td', { 'data-label': 'Amount' }, e.amount > 0 ? `+${e.amount}` : e.amount),
          h('td', { 'data-label': 'Balance after' }, e.balanceAfter),
          h('td', { 'data-label': 'Job' }, e.jobId ? h('a', { href: `#/jobs/${e.jobId}`, class: 'mono' }, e.jobId) : '—'),
          h('td', { 'data-label': 'Note' }, e.note ?? '—'))))))));
  return null;
}

export async function webhooksPage(main) {
  document.title = 'Webhooks · Atelier console';
  const error = alertBox();
  const shown = h('div', { id: 'secret-view' });
  const reveal = h('button', { type: 'button', id: 'reveal', 'aria-pressed': 'false', 'aria-controls': 'secret-view' }, 'Reveal secret');
  const rotate = h('button', { type: 'button', id: 'rotate', class: 'danger' }, 'Rotate secret');
  let secret = null;
  let visible = false;

  function paint() {
    reveal.textContent = visible ? 'Hide secret' : 'Reveal secret';
    reveal.setAttribute('aria-pressed', String(visible));
    if (!secret) {
      fill(shown, h('p', { class: 'secret', id: 'secret' }, '•••••••• (hidden)'));
      return;
    }
    fill(shown,
      h('p', {}, h('strong', {}, 'Current: '), h('span', { class: 'secret', id: 'secret' }, visible ? secret.secret : '•••••••• (hidden)')),
      secret.previousSecret ? h('p', { id: 'previous' },
        h('strong', {}, 'Previous: '), h('span', { class: 'secret' }, visible ? secret.previousSecret : '••••••••'),
        ' — still signs until ', h('strong', { id: 'previous-expires' }, when(secret.previousExpiresAt)), '.') : null);
  }

  reveal.addEventListener('click', async () => {
    if (!visible && !secret) {
      try {
        secret = await api('/api/v1/webhooks/secret');
      } catch (err) {
        error.show(`Could not read the secret: ${err.message}`);
        return;
      }
    }
    visible = !visible;
    paint();
  });
  rotate.addEventListener('click', async () => {
    rotate.disabled = true;
    try {
      secret = await api('/api/v1/webhooks/secret/rotate', { method: 'POST' });
      visible = true;
      paint();
      announce('The secret was rotated; the previous one keeps signing until its overlap ends.');
    } catch (err) {
      error.show(`Rotation refused: ${err.message}`);
    } finally {
      rotate.disabled = false;
    }
  });

  paint();
  fill(main, h('h1', {}, 'Webhooks'),
    h('section', { class: 'panel', 'aria-labelledby': 'h-secret' },
      h('h2', { id: 'h-secret' }, 'Signing secret'),
      h('p', {}, 'Your webhooks are signed with this secret (Standard Webhooks ',
        h('code', {}, 'webhook-signature'), ', and ', h('code', {}, 'X-Zhinian-Signature'), '). ',
        'Reading it the first time creates a secret of your own, used from then on instead of the deployment\'s shared one: update your receiver when you do.'),
      shown, error,
      h('p', { class: 'row' }, reveal),
      h('h3', {}, 'Rotate'),
      h('p', { id: 'rotate-explained' }, 'Rotating makes a new secret at once. The previous secret keeps signing ',
        h('code', {}, 'webhook-signature'), ' beside the new one until its overlap ends (the time shown after rotating), so receivers can switch without losing a webhook; ',
        h('code', {}, 'X-Zhinian-Signature'), ' uses the new secret at once.'),
      h('p', { class: 'row' }, rotate)),
    h('p', {}, 'Each job\'s deliveries and attempts are on its page.'));
  return null;
}

export async function limitsPage(main) {
  document.title = 'Limits · Atelier console';
  const limits = await api('/api/v1/limits');
  const counts = (view) => h('div', {},
    h('p', {}, h('strong', {}, `${view.current}`), view.limit != null ? ` of ${view.limit}` : ' (no cap)'),
    Object.keys(view.byCapability).length ? h('ul', {}, Object.entries(view.byCapability).map(([c, n]) => h('li', {}, `${c}: ${n}`))) : null);
  fill(main, h('h1', {}, 'Limits'),
    h('section', { class: 'panel', 'aria-labelledby': 'h-rate' }, h('h2', { id: 'h-rate' }, 'Create rate'),
      h('dl', { class: 'facts', id: 'rate' },
        h('dt', {}, 'Sustained'), h('dd', {}, `${limits.rate.perSecond} jobs per second`),
        h('dt', {}, 'Burst'), h('dd', {}, `${limits.rate.burst} at once`),
        h('dt', {}, 'Available now'), h('dd', {}, `${limits.rate.remaining}`),
        h('dt', {}, 'Full again in'), h('dd', {}, `${limits.rate.resetSeconds} s`))),
    h('section', { class: 'panel', 'aria-labelledby': 'h-queued' }, h('h2', { id: 'h-queued' }, 'Queued jobs'), counts(limits.queued)),
    h('section', { class: 'panel', 'aria-labelledby': 'h-running' }, h('h2', { id: 'h-running' }, 'Running jobs'),
      h('p', { class: 'muted' }, 'The cap is per capability, counting jobs handed to workers too.'), counts(limits.running)),
    h('section', { class: 'panel', 'aria-labelledby': 'h-weight' }, h('h2', { id: 'h-weight' }, 'Weight'),
      h('p', {}, `${limits.weight}: your share of the workers when they are busy, relative to other clients.`)));
  return null;
}
