// The console's shell: sign-in, hash routes, the navigation and the live feed's state.
// Each page is a function `(main, route) => cleanup?` in its own module.

import { api, ApiError, session, onUnauthorized } from './api.js';
import { h, fill } from './dom.js';
import { feed } from './feed.js';
import { jobsPage } from './jobs.js';
import { jobPage } from './job.js';
import { createPage } from './create.js';
import { assetsPage, creditsPage, webhooksPage, limitsPage } from './account.js';

const main = document.getElementById('main');
let cleanup = null;
let refusedNotice = null;

const FEED_STATES = {
  connecting: 'Connecting…',
  live: '● Live',
  reconnecting: 'Reconnecting…',
  polling: 'Updating every 2 s',
  refused: 'Key refused',
};

/** `#/jobs/abc?status=failed` → {path: ['jobs', 'abc'], query: URLSearchParams} */
function parseRoute() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, query = ''] = raw.split('?');
  return { path: path.split('/').filter(Boolean).map(decodeURIComponent), query: new URLSearchParams(query) };
}

function pageFor(route) {
  const [section, id] = route.path;
  switch (section) {
    case 'jobs': return id ? jobPage : jobsPage;
    case 'create': return createPage;
    case 'assets': return assetsPage;
    case 'credits': return creditsPage;
    case 'webhooks': return webhooksPage;
    case 'limits': return limitsPage;
    default: return null;
  }
}

async function render() {
  cleanup?.();
  cleanup = null;
  const route = parseRoute();
  if (!session.key) {
    showSignedIn(false);
    signInPage(route);
    return;
  }
  showSignedIn(true);
  const page = pageFor(route);
  if (!page) {
    location.replace('#/jobs');
    return;
  }
  markCurrent(route.path[0]);
  fill(main);
  try {
    cleanup = (await page(main, route)) ?? null;
  } catch (err) {
    fill(main, h('h1', {}, 'Something went wrong'), h('p', { class: 'alert', role: 'alert' }, err.message));
  }
}

function markCurrent(section) {
  for (const link of document.querySelectorAll('#nav a')) {
    if (link.getAttribute('href') === `#/${section}`) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

function showSignedIn(signedIn) {
  document.getElementById('nav').hidden = !signedIn;
  document.getElementById('session').hidden = !signedIn;
}

function signInPage(route) {
  document.title = 'Sign in · Atelier console';
  const error = h('p', { class: 'alert', id: 'signin-error', role: 'alert', tabindex: -1 });
  const input = h('input', {
    id: 'key', name: 'key', type: 'password', autocomplete: 'off', spellcheck: 'false',
    required: true, 'aria-describedby': 'key-hint signin-error',
  });
  const button = h('button', { type: 'submit', id: 'sign-in' }, 'Sign in');
  const form = h('form', { class: 'panel', id: 'signin' },
    h('div', { class: 'field' },
      h('label', { for: 'key' }, 'API key'),
      input,
      h('span', { class: 'hint', id: 'key-hint' },
        'Your sk-… key. It is kept in this tab only (sessionStorage) and sent in the Authorization header.')),
    button,
    error);
  if (refusedNotice) {
    error.textContent = refusedNotice;
    refusedNotice = null;
  }
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) return;
    button.disabled = true;
    error.textContent = '';
    try {
      await api('/api/v1/credits?limit=1', { key });
      session.set(key);
      feed.start();
      const next = route.path.length ? location.hash : '#/jobs';
      if (location.hash === next) render(); else location.hash = next;
    } catch (err) {
      error.textContent = err instanceof ApiError && err.status === 401
        ? 'Key refused: the API did not accept this key.'
        : `Could not sign in: ${err.message}`;
      error.focus();
    } finally {
      button.disabled = false;
    }
  });
  fill(main, h('h1', {}, 'Sign in'), form);
  input.focus();
}

function signOut(notice) {
  feed.stop();
  session.clear();
  refusedNotice = notice ?? null;
  render();
}

document.getElementById('sign-out').addEventListener('click', () => signOut());
onUnauthorized(() => signOut('Key refused: the API no longer accepts this key. Sign in again.'));
feed.onState((state) => {
  document.getElementById('feed-state').textContent = FEED_STATES[state] ?? state;
});
window.addEventListener('hashchange', () => {
  render();
  main.focus({ preventScroll: true });
});

if (session.key) feed.start();
render();
