// The API, with the key of this tab's session. The key lives in sessionStorage only: never in
// a URL (media and downloads are fetched with the header and shown through blob: URLs) nor in
// a cookie.

const KEY = 'atelier.console.key';

export const session = {
  get key() { return sessionStorage.getItem(KEY); },
  set(key) { sessionStorage.setItem(KEY, key); },
  clear() { sessionStorage.removeItem(KEY); },
};

/** An answer other than 2xx, with the API's own message. */
export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

const listeners = { unauthorized: [] };
/** Called when a signed-in call answers 401 (the key was revoked meanwhile). */
export function onUnauthorized(fn) { listeners.unauthorized.push(fn); }

export function authHeaders(extra = {}, key = session.key) {
  const headers = new Headers(extra);
  if (key) headers.set('Authorization', `Bearer ${key}`);
  return headers;
}

/** The message of an error body on any face: native `{error}`, creations `{detail}`, tasks `{msg}`. */
function messageOf(body) {
  if (!body || typeof body !== 'object') return null;
  return body.error ?? body.detail?.message ?? body.msg ?? null;
}

async function request(path, { method = 'GET', json, body, headers = {}, signal, key } = {}) {
  const all = authHeaders(headers, key ?? session.key);
  if (json !== undefined) {
    all.set('Content-Type', 'application/json');
    body = JSON.stringify(json);
  }
  const response = await fetch(path, { method, headers: all, body, signal, cache: 'no-store' });
  if (response.status === 401 && !key) listeners.unauthorized.forEach((fn) => fn());
  return response;
}

/** A JSON call; resolves to the body, rejects with an ApiError naming the API's reason. */
export async function api(path, options = {}) {
  const response = await request(path, options);
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = null; }
  if (!response.ok) {
    const reason = messageOf(body) ?? `${response.status} ${response.statusText}`.trim();
    throw new ApiError(response.status, reason, body);
  }
  return body;
}

/** A file, fetched with the key. */
export async function fetchBlob(path, signal) {
  const response = await request(path, { signal });
  if (!response.ok) throw new ApiError(response.status, `download failed: ${response.status}`);
  return response.blob();
}

/** Saves a file: fetched with the key, handed to the browser through a blob: link. */
export async function download(path, name) {
  const blob = await fetchBlob(path);
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = name || 'download';
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** Uploads files as one multipart request (`files` parts), as POST /api/v1/assets takes them. */
export function uploadFiles(files) {
  const form = new FormData();
  for (const file of files) form.append('files', file, file.name);
  return api('/api/v1/assets', { method: 'POST', body: form });
}

/** For the feed: a raw streaming request (the caller reads the body). */
export function rawRequest(path, options) { return request(path, options); }
