// Building the page: elements are made with h(), never from markup strings, so text from the
// API is always text. Plus the few formatters every page shares.

/** h('a', {href: '#/jobs', class: 'x', onclick: fn}, 'text', child, [more]) */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') el.className = value;
    else if (name.startsWith('on') && typeof value === 'function') el.addEventListener(name.slice(2), value);
    else if (name === 'value' || name === 'checked') el[name] = value;
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

/** Replaces an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** Says `message` to screen readers (the polite live region). */
export function announce(message) {
  const region = document.getElementById('announcer');
  region.textContent = '';
  // A new text node after a tick is announced even when it repeats the last message.
  setTimeout(() => { region.textContent = message; }, 30);
}

export const STATUSES = ['queued', 'running', 'succeeded', 'failed', 'expired', 'cancelled'];
export const LIVE_STATUSES = ['queued', 'running'];

export function badge(status) {
  return h('span', { class: `badge badge-${STATUSES.includes(status) ? status : 'queued'}` }, status);
}

export function progressBar(percent, label) {
  const value = Math.max(0, Math.min(100, Number(percent) || 0));
  return h('progress', { max: 100, value, 'aria-label': label ?? `progress ${value}%` }, `${value}%`);
}

export function when(iso) {
  if (!iso) return '—';
  const date = new Date(iso);
  return h('time', { datetime: iso, title: iso }, date.toLocaleString());
}

export function duration(fromIso, toIso) {
  if (!fromIso || !toIso) return null;
  const ms = new Date(toIso) - new Date(fromIso);
  if (!(ms >= 0)) return null;
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

export function bytes(n) {
  if (n == null) return '—';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** The alert box of a page: shows an error's message, and focuses it so it is read. */
export function alertBox(id = 'page-error') {
  const el = h('div', { class: 'alert', id, role: 'alert', tabindex: -1 });
  el.show = (message) => { el.textContent = message; if (message) el.focus(); };
  return el;
}
