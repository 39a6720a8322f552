// #/create/<capability>: a form per capability, generated from what the API publishes —
// GET /api/v1/capabilities (which exist, which have a worker, their models) and the request
// schema of POST /api/v1/jobs in GET /api/v1/openapi.json (one closed branch per capability,
// built from the same constants as the server's validation: fields, types, limits, enums).
// Input images are uploaded (drag and drop, or the file input) through POST /api/v1/assets and
// sent as inputAssetIds. The API has the last word: its refusal is shown as it says it.

import { api, uploadFiles, fetchBlob } from './api.js';
import { h, fill, bytes, alertBox } from './dom.js';

let schemaCache = null;

async function branches() {
  if (!schemaCache) {
    const doc = await api('/api/v1/openapi.json');
    const request = doc.components.schemas.CreateJobRequest;
    schemaCache = new Map(request.oneOf.map((b) => [b.properties.capability.enum[0], b]));
  }
  return schemaCache;
}

/** `["integer", "null"]` → "integer". */
const typeOf = (schema) => (Array.isArray(schema.type) ? schema.type.find((t) => t !== 'null') : schema.type);
const enumOf = (schema) => schema.enum?.filter((v) => v !== null);
const LABELS = {
  prompt: 'Prompt', imageUrls: 'Image URLs', inputUrls: 'Input URLs', webhookUrl: 'Webhook URL',
  model: 'Model', width: 'Width', height: 'Height', scale: 'Scale', quality: 'Quality',
  force_single: 'Force a single image', seed: 'Seed', resolution: 'Resolution', settings: 'Video settings',
  ratio: 'Aspect ratio', duration: 'Duration', materials: 'Materials (JSON)',
};
const label = (name) => LABELS[name] ?? name;
const ORDER = ['model', 'prompt', 'inputAssetIds', 'resolution', 'scale', 'width', 'height', 'quality',
  'seed', 'force_single', 'settings', 'materials', 'imageUrls', 'inputUrls', 'webhookUrl'];

export async function createPage(main, route) {
  document.title = 'Create job · Atelier console';
  const [{ capabilities }, schemas] = await Promise.all([api('/api/v1/capabilities'), branches()]);
  const offered = capabilities.filter((c) => schemas.has(c.capability));
  const chosen = route.path[1] && schemas.has(route.path[1]) ? route.path[1] : offered[0]?.capability;
  const picker = h('nav', { 'aria-label': 'Capability' }, h('ul', { class: 'row', id: 'capabilities' },
    offered.map((c) => h('li', {}, h('a', {
      href: `#/create/${c.capability}`, class: c.capability === chosen ? 'button' : 'button quiet',
      'aria-current': c.capability === chosen ? 'page' : null,
    }, c.capability)))));
  const others = capabilities.filter((c) => !schemas.has(c.capability));
  fill(main, h('h1', {}, 'Create a job'), picker,
    others.length ? h('p', { class: 'muted' }, `${others.map((c) => c.capability).join(', ')}: created through their own API face.`) : null);
  if (!chosen) return null;
  const capability = capabilities.find((c) => c.capability === chosen);
  const schema = schemas.get(chosen);
  main.append(form(capability, schema));
  return null;
}

function form(capability, schema) {
  const error = alertBox('create-error');
  const fields = h('div', {});
  const readers = [];
  const required = new Set(schema.required ?? []);
  const rank = (n) => (ORDER.includes(n) ? ORDER.indexOf(n) : ORDER.length);
  const names = Object.keys(schema.properties).filter((n) => n !== 'capability')
    .sort((a, b) => rank(a) - rank(b));
  for (const name of names) {
    const built = field(name, schema.properties[name], required.has(name), capability);
    if (!built) continue;
    fields.append(built.element);
    readers.push(built.read);
  }
  const submit = h('button', { type: 'submit', id: 'create-submit' }, `Create ${capability.capability} job`);
  const el = h('form', { class: 'panel', id: 'create-form' },
    h('h2', {}, capability.capability, ' ', h('span', { class: 'muted' }, capability.description)),
    capability.available ? null : h('p', { class: 'note' },
      'No worker serves this capability right now: a job waits queued, and expires if none comes.'),
    h('p', { class: 'muted', id: 'create-rules' }, schema.description),
    fields, error, submit);
  el.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.show('');
    const body = { capability: capability.capability };
    try {
      for (const read of readers) read(body);
    } catch (err) {
      error.show(err.message);
      return;
    }
    submit.disabled = true;
    try {
      const answer = await api('/api/v1/jobs', { method: 'POST', json: body });
      location.hash = `#/jobs/${answer.job.id}`;
    } catch (err) {
      error.show(`Refused: ${err.message}`);
    } finally {
      submit.disabled = false;
    }
  });
  return el;
}

const hint = (id, ...text) => h('span', { class: 'hint', id }, ...text);

function limits(schema) {
  const parts = [];
  if (schema.minimum !== undefined && schema.maximum !== undefined) parts.push(`${schema.minimum}–${schema.maximum}`);
  if (schema.default !== undefined) parts.push(`default ${schema.default}`);
  if (schema.maxLength) parts.push(`up to ${schema.maxLength} characters`);
  if (schema.description) parts.push(schema.description);
  return parts.join('; ');
}

/** One form field for one property: `{element, read(body)}`, or null for what a form cannot offer. */
function field(name, schema, required, capability, prefix = '') {
  const id = `f-${prefix}${name}`;
  const type = typeOf(schema);
  const values = enumOf(schema);
  const text = limits(schema);
  const described = text ? `${id}-hint` : null;
  const wrap = (control, extra) => h('div', { class: 'field' },
    h('label', { for: id }, label(name), required ? ' (required)' : ''), control,
    text ? hint(`${id}-hint`, text) : null, extra);
  const set = (body, value) => {
    if (prefix) (body[prefix.slice(0, -1)] ??= {})[name] = value;
    else body[name] = value;
  };

  if (name === 'inputAssetIds') return uploader(schema, capability);
  if (values) {
    const select = h('select', { id, name, 'aria-describedby': described, required },
      required ? null : h('option', { value: '' }, '(default)'),
      values.map((v) => h('option', { value: v }, v)));
    return { element: wrap(select), read: (body) => { if (select.value) set(body, select.value); } };
  }
  if (type === 'object') {
    const inner = Object.entries(schema.properties ?? {}).map(([n, s]) => field(n, s, false, capability, `${name}.`));
    return {
      element: h('fieldset', {}, h('legend', {}, label(name)), inner.map((f) => f.element)),
      read: (body) => inner.forEach((f) => f.read(body)),
    };
  }
  if (type === 'array' && typeOf(schema.items ?? {}) === 'string') {
    const area = h('textarea', { id, name, rows: 3, 'aria-describedby': `${id}-hint` });
    const max = schema.maxItems;
    return {
      element: h('div', { class: 'field' }, h('label', { for: id }, label(name)), area,
        hint(`${id}-hint`, `One per line${max ? `, at most ${max}` : ''}.`)),
      read: (body) => {
        const list = area.value.split('\n').map((s) => s.trim()).filter(Boolean);
        if (max && list.length > max) throw new Error(`${name}: at most ${max}`);
        if (list.length) set(body, list);
      },
    };
  }
  if (type === 'array') {
    const area = h('textarea', { id, name, rows: 3, 'aria-describedby': `${id}-hint`, placeholder: '[{"type": "image", "url": "https://…"}]' });
    return {
      element: h('div', { class: 'field' }, h('label', { for: id }, label(name)), area,
        hint(`${id}-hint`, `A JSON list${schema.maxItems ? `, at most ${schema.maxItems}` : ''}.`)),
      read: (body) => {
        if (!area.value.trim()) return;
        let value;
        try { value = JSON.parse(area.value); } catch { throw new Error(`${name}: not valid JSON`); }
        set(body, value);
      },
    };
  }
  if (type === 'boolean') {
    const box = h('input', { id, name, type: 'checkbox' });
    return {
      element: h('div', { class: 'field check' }, box, h('label', { for: id }, label(name))),
      read: (body) => { if (box.checked) set(body, true); },
    };
  }
  if (type === 'integer' || type === 'number') {
    const input = h('input', {
      id, name, type: 'number', inputmode: type === 'integer' ? 'numeric' : 'decimal',
      min: schema.minimum, max: schema.maximum, step: type === 'integer' ? 1 : 'any',
      placeholder: schema.default, required, 'aria-describedby': described,
    });
    return { element: wrap(input), read: (body) => { if (input.value !== '') set(body, Number(input.value)); } };
  }
  if (name === 'prompt') {
    const area = h('textarea', { id, name, rows: 4, maxlength: schema.maxLength, required, 'aria-describedby': described });
    return { element: wrap(area), read: (body) => { if (area.value.trim()) set(body, area.value); } };
  }
  const isUrl = schema.format === 'uri';
  const input = h('input', {
    id, name, type: isUrl ? 'url' : 'text', maxlength: schema.maxLength, required,
    pattern: isUrl ? null : htmlPattern(schema.pattern), 'aria-describedby': described, autocomplete: 'off',
  });
  return { element: wrap(input), read: (body) => { if (input.value.trim()) set(body, input.value.trim()); } };
}

/** The schema's pattern when the browser can use it as is (HTML compiles it with the `v` flag). */
function htmlPattern(pattern) {
  if (!pattern) return null;
  try {
    new RegExp(pattern, 'v');
    return pattern;
  } catch {
    return null;
  }
}

/** Input files: dropped on the zone or chosen with the file input, uploaded at once. */
function uploader(schema, capability) {
  const max = schema.maxItems ?? 1;
  const uploaded = [];
  const list = h('ul', { class: 'uploads', id: 'uploads', 'aria-label': 'Uploaded inputs' });
  const status = h('p', { class: 'hint', id: 'upload-status', role: 'status' });
  const input = h('input', {
    id: 'f-files', type: 'file', accept: 'image/*', multiple: max > 1, 'aria-describedby': 'upload-hint upload-status',
  });
  const zone = h('div', { class: 'drop', id: 'drop-zone' },
    h('p', {}, 'Drop input images here, or'),
    h('label', { for: 'f-files' }, 'Choose files'), input,
    hint('upload-hint', capability.capability === 'image.inpaint'
      ? 'Two images, in order: the original, then the mask (white = repaint).'
      : `Up to ${max} image${max > 1 ? 's' : ''}; uploaded to your assets, then sent as inputAssetIds.`));

  async function add(files) {
    const room = max - uploaded.length;
    const chosen = [...files].slice(0, Math.max(room, 0));
    if (chosen.length === 0) {
      status.textContent = `At most ${max} input${max > 1 ? 's' : ''}.`;
      return;
    }
    status.textContent = `Uploading ${chosen.map((f) => f.name).join(', ')}…`;
    try {
      const { assets } = await uploadFiles(chosen);
      for (const asset of assets) {
        uploaded.push(asset);
        list.append(item(asset));
      }
      status.textContent = `Uploaded ${assets.map((a) => a.name).join(', ')}.`;
    } catch (err) {
      status.textContent = `Upload refused: ${err.message}`;
    }
    input.value = '';
  }

  function item(asset) {
    const thumb = h('img', { class: 'thumb', alt: '' });
    if (asset.kind === 'image') {
      fetchBlob(asset.url).then((blob) => { thumb.src = URL.createObjectURL(blob); }).catch(() => {});
    }
    const remove = h('button', { type: 'button', class: 'quiet', 'aria-label': `Remove ${asset.name}` }, 'Remove');
    const li = h('li', { 'data-asset-id': asset.id }, thumb,
      h('span', {}, asset.name, h('span', { class: 'step' },
        `${asset.width ? `${asset.width}×${asset.height} · ` : ''}${bytes(asset.size)}`)), remove);
    remove.addEventListener('click', () => {
      uploaded.splice(uploaded.indexOf(asset), 1);
      if (thumb.src) URL.revokeObjectURL(thumb.src);
      li.remove();
      input.focus();
    });
    return li;
  }

  input.addEventListener('change', () => add(input.files));
  zone.addEventListener('dragover', (event) => { event.preventDefault(); zone.classList.add('over'); });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('over');
    add(event.dataTransfer.files);
  });

  return {
    element: h('fieldset', {}, h('legend', {}, 'Input images'), zone, list, status),
    read: (body) => { if (uploaded.length) body.inputAssetIds = uploaded.map((a) => a.id); },
  };
}
