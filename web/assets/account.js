// The account page: the master key, usage, scoped keys, password, data export and deletion.
import { call } from './api.js';
import { session, onSubmit, field, say, copyButton, carryNotice, showCarriedNotice } from './ui.js';
import { ALL, DEFAULT, DANGEROUS } from './scopes.js';
import { scopePicker } from './scope-picker.js';

const $ = (id) => document.getElementById(id);
let key = session.key();
let email = '';
let createScopes;
let editScopes;

function leave(text, kind) {
  session.end();
  if (text) carryNotice(text, kind);
  location.replace('/');
}

if (key) {
  showCarriedNotice($('notice'));
  wire();
  load();
} else if (session.withoutKey()) {
  showCarriedNotice($('notice'));
  wire();
  showWithoutKey(session.withoutKey());
} else {
  leave();
}

// Every call with the master key; a key that no longer works ends the session.
async function authed(method, path, body) {
  try {
    return await call(method, path, { key, body });
  } catch (error) {
    if (error.code === 'invalid_api_key' || error.code === 'api_key_required') {
      leave('Your session has ended (the key no longer works). Please sign in again.', 'error');
    }
    throw error;
  }
}

async function load() {
  try {
    const user = await authed('GET', '/auth/user-data');
    showUser(user);
  } catch (error) {
    say($('load-message'), error.message, 'error');
  }
  await loadKeys();
}

// An account imported from the relay 3.x, signed in without a key this service has seen:
// the key part says so and offers to regenerate; the rest needs a key.
function showWithoutKey(address) {
  email = address;
  $('who').textContent = `Signed in as ${address}.`;
  keyShown(false);
  $('regenerate-hint').textContent = 'The new key replaces the relay\'s: paste it into Foundry.';
  say($('load-message'), 'Regenerate your key (under “API key”) to see your usage and manage scoped keys here.', 'info');
}

function keyShown(shown) {
  $('relay-key').hidden = shown;
  $('master-key-row').hidden = !shown;
  document.querySelector('label[for="master-key"]').hidden = !shown;
  for (const section of document.querySelectorAll('[data-needs-key]')) section.hidden = !shown;
}

function showUser(user) {
  email = user.email;
  $('who').textContent = `Signed in as ${user.email}.`;
  $('master-key').value = key;
  legacyKey(user.legacyKey, user.legacyKeysUntil);
  const limits = user.limits ?? {};
  usage('today', user.requestsToday, limits.dailyLimit, 'day-limit-text');
  usage('month', user.requestsThisMonth, limits.unlimitedMonthly ? null : limits.monthlyLimit, 'month-limit-text');
  const status = user.subscriptionStatus || 'free';
  const badge = $('subscription');
  badge.textContent = status === 'active' ? 'Active subscription' : status === 'free' ? 'Free plan' : status;
  badge.className = `badge ${status === 'active' ? 'ok' : ''}`;
  $('unverified').hidden = user.emailVerified !== false;
}

// A key from the old relay (64 hex characters) still works, until LEGACY_KEYS_UNTIL if set.
function legacyKey(legacy, until) {
  const callout = $('legacy-key');
  callout.hidden = !legacy;
  if (!legacy) return;
  const end = until ? ` It stops working on ${new Date(until).toLocaleString(undefined, { dateStyle: 'long', timeStyle: 'short' })}.` : '';
  callout.textContent = `Your key came from the old relay: regenerate it.${end}`;
}

function usage(which, count, limit, labelId) {
  const numbers = new Intl.NumberFormat();
  $(which === 'today' ? 'requests-today' : 'requests-month').textContent = numbers.format(count ?? 0);
  const of = $(which === 'today' ? 'requests-today-of' : 'requests-month-of');
  const meter = $(`${which}-meter`);
  if (limit) {
    of.textContent = `of ${numbers.format(limit)} requests`;
    meter.max = limit;
    meter.value = Math.min(count ?? 0, limit);
    meter.low = limit * 0.75;
    meter.high = limit * 0.9;
    meter.hidden = false;
    $(labelId).textContent = `${Math.round(((count ?? 0) / limit) * 100)}% used`;
  } else {
    of.textContent = 'requests, no monthly limit';
    meter.hidden = true;
    $(labelId).textContent = '';
  }
}

// ------------------------------------------------------------------ scoped keys

async function loadKeys() {
  try {
    const answer = await authed('GET', '/auth/api-keys');
    showKeys(answer.keys ?? []);
  } catch (error) {
    say($('keys-message'), error.message, 'error');
  }
  // Every change of a key is also an event of the account.
  await loadActivity();
}

// ------------------------------------------------------------------ recent activity

const EVENTS = {
  'login-succeeded': 'Signed in',
  'login-failed': 'Wrong password',
  'login-locked': 'Sign-in refused: too many wrong passwords',
  'password-changed': 'Password changed',
  'reset-requested': 'Password reset email sent',
  'reset-completed': 'Password reset',
  'master-key-regenerated': 'API key regenerated',
  'scoped-key-created': 'Scoped key created',
  'scoped-key-changed': 'Scoped key changed',
  'scoped-key-deleted': 'Scoped key deleted',
  'account-imported': 'Account moved from the relay',
};

async function loadActivity() {
  try {
    const answer = await authed('GET', '/auth/activity');
    showActivity(answer.events ?? []);
  } catch (error) {
    say($('activity-message'), error.message, 'error');
  }
}

function showActivity(events) {
  const body = $('activity').tBodies[0];
  body.replaceChildren();
  if (events.length === 0) {
    const row = body.insertRow();
    const td = cell(row, '', 'Nothing yet.');
    td.className = 'empty';
    td.colSpan = 3;
    return;
  }
  for (const e of events) {
    const row = body.insertRow();
    row.dataset.event = e.event;
    if (e.outcome === 'failure') row.className = 'failure';
    cell(row, 'When', date(e.at));
    cell(row, 'What', EVENTS[e.event] ?? e.event);
    const where = [e.address, e.userAgent].filter(Boolean).join(' · ');
    cell(row, 'Where from', where || 'Unknown');
  }
}

function cell(row, label, content) {
  const td = document.createElement('td');
  td.dataset.label = label;
  if (content instanceof Node) td.append(content);
  else td.textContent = content;
  row.append(td);
  return td;
}

function date(iso) {
  if (!iso) return 'Never';
  return new Date(iso).toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });
}

// The keys as last listed, by id, for the edit dialog.
const listed = new Map();

function showKeys(keys) {
  const body = $('keys').tBodies[0];
  body.replaceChildren();
  listed.clear();
  if (keys.length === 0) {
    const row = body.insertRow();
    const td = row.insertCell();
    td.colSpan = 9;
    td.className = 'empty';
    td.textContent = 'No scoped keys yet. Create one above for each bot or tool.';
    return;
  }
  const numbers = new Intl.NumberFormat();
  for (const k of keys) {
    listed.set(k.id, k);
    const row = body.insertRow();
    const name = cell(row, 'Name', k.name);
    name.id = `key-name-${k.id}`;
    const prefix = document.createElement('code');
    prefix.textContent = k.key;
    cell(row, 'Key', prefix);
    cell(row, 'Scopes', scopesOf(k, name.id));
    cell(row, 'World and user', worldAndUser(k) || 'Whole account');
    const limits = [];
    if (k.monthlyLimit) limits.push(`${numbers.format(k.monthlyLimit)} / month`);
    if (k.dailyLimit) limits.push(`${numbers.format(k.dailyLimit)} / day`);
    cell(row, 'Limit', limits.join(', ') || 'Account limit');
    cell(row, 'Used this month', numbers.format(k.requestsThisMonth ?? 0));
    cell(row, 'Expires', date(k.expiresAt));
    const state = document.createElement('span');
    if (!k.enabled) {
      state.className = 'badge off';
      state.textContent = 'Disabled';
    } else if (k.isExpired) {
      state.className = 'badge muted';
      state.textContent = 'Expired';
    } else {
      state.className = 'badge ok';
      state.textContent = 'Active';
    }
    cell(row, 'State', state);
    const actions = document.createElement('div');
    actions.className = 'row-actions';
    const edit = button('Edit', 'small', name.id, () => openEdit(k.id, edit));
    edit.id = `key-edit-${k.id}`;
    const remove = button('Delete', 'danger small', name.id, () => deleteKey(k, remove));
    actions.append(edit, remove);
    cell(row, '', actions);
  }
}

function button(text, className, describedBy, onClick) {
  const element = document.createElement('button');
  element.type = 'button';
  element.className = className;
  element.textContent = text;
  element.setAttribute('aria-describedby', describedBy);
  element.addEventListener('click', onClick);
  return element;
}

const sameSet = (a, b) => a.length === b.length && a.every((name) => b.includes(name));

// A key's scopes, compactly: how many (the list behind a disclosure), or "every scope" for
// a key made before scopes, with an offer to narrow it.
function scopesOf(k, nameId) {
  const wrap = document.createElement('div');
  wrap.className = 'scopes-cell';
  if (!Array.isArray(k.scopes)) {
    const badge = document.createElement('span');
    badge.className = 'badge warn';
    badge.textContent = 'Every scope';
    const why = document.createElement('span');
    why.className = 'hint';
    why.textContent = ' (made before scopes) ';
    const narrow = button('Narrow…', 'small', nameId, () => openEdit(k.id, narrow));
    wrap.append(badge, why, narrow);
    return wrap;
  }
  if (k.scopes.length === 0) {
    wrap.textContent = 'None: the key can do nothing on the relay';
    return wrap;
  }
  const details = document.createElement('details');
  const summary = document.createElement('summary');
  const count = `${k.scopes.length} scope${k.scopes.length === 1 ? '' : 's'}`;
  summary.textContent = sameSet(k.scopes, DEFAULT) ? `${count} (default set)`
    : sameSet(k.scopes, ALL) ? `${count} (all)` : count;
  if (k.scopes.some((name) => DANGEROUS.includes(name))) {
    const mark = document.createElement('span');
    mark.className = 'badge off';
    mark.textContent = 'runs code';
    summary.append(' ', mark);
  }
  const chips = document.createElement('ul');
  chips.className = 'chips';
  chips.setAttribute('aria-label', `Scopes of ${k.name}`);
  for (const name of k.scopes) {
    const chip = document.createElement('li');
    chip.textContent = name;
    if (DANGEROUS.includes(name)) chip.className = 'dangerous';
    chips.append(chip);
  }
  details.append(summary, chips);
  wrap.append(details);
  return wrap;
}

// "client world-1, user gm-1": the world (client) and Foundry user a key is held to.
function worldAndUser(k) {
  const clients = [...new Set([k.scopedClientId, ...(k.scopedClientIds ?? [])].filter(Boolean))];
  const parts = clients.map((client) => `client ${client}`);
  if (k.scopedUserId) parts.push(`user ${k.scopedUserId}`);
  for (const [client, user] of Object.entries(k.scopedUserIds ?? {})) {
    if (client === k.scopedClientId && user === k.scopedUserId) continue;
    parts.push(`user ${user} in ${client}`);
  }
  return parts.join(', ');
}

// ------------------------------------------------------------------ the edit dialog

let editing = null;
let editOpener = null;

function openEdit(id, opener) {
  const k = listed.get(id);
  if (!k) return;
  editing = k;
  editOpener = opener;
  const form = $('edit-key-form');
  form.reset();
  say(form.querySelector('.message'), '');
  $('edit-key-heading').textContent = `Edit “${k.name}”`;
  $('edit-key-prefix').textContent = `Key ${k.key}`;
  form.elements.namedItem('name').value = k.name;
  form.elements.namedItem('monthlyLimit').value = k.monthlyLimit ?? '';
  form.elements.namedItem('dailyLimit').value = k.dailyLimit ?? '';
  form.elements.namedItem('expiresAt').value = localInput(k.expiresAt);
  form.elements.namedItem('enabled').checked = k.enabled !== false;
  const unrestricted = !Array.isArray(k.scopes);
  $('edit-key-unrestricted').hidden = !unrestricted;
  editScopes.set(unrestricted ? ALL : k.scopes);
  $('edit-key').showModal();
}

// What the dialog's form says that differs from the key: only that is sent.
function changes(form, k) {
  const body = {};
  const name = field(form, 'name').trim();
  if (name !== k.name) body.name = name;
  for (const limit of ['monthlyLimit', 'dailyLimit']) {
    const value = field(form, limit).trim();
    if (value !== String(k[limit] ?? '')) body[limit] = value === '' ? null : whole(value);
  }
  const expires = field(form, 'expiresAt');
  if (expires !== localInput(k.expiresAt)) body.expiresAt = expires === '' ? null : isoTime(expires);
  const enabled = form.elements.namedItem('enabled').checked;
  if (enabled !== (k.enabled !== false)) body.enabled = enabled;
  const scopes = editScopes.get();
  if (!sameSet(scopes, Array.isArray(k.scopes) ? k.scopes : ALL)) body.scopes = scopes;
  return body;
}

async function saveEdit(form) {
  const k = editing;
  const body = changes(form, k);
  if (Object.keys(body).length === 0) {
    $('edit-key').close();
    say($('keys-message'), `Nothing to save: “${k.name}” is unchanged.`, 'info');
    return undefined;
  }
  const saved = await authed('PATCH', `/auth/api-keys/${encodeURIComponent(k.id)}`, body);
  editOpener = null;
  $('edit-key').close();
  say($('keys-message'), `Key “${saved.name ?? k.name}” saved.`, 'success');
  await loadKeys();
  $(`key-edit-${k.id}`)?.focus();
  return undefined;
}

// A datetime-local field's value for an RFC 3339 time, in the browser's time zone.
function localInput(iso) {
  if (!iso) return '';
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return '';
  const two = (n) => String(n).padStart(2, '0');
  return `${when.getFullYear()}-${two(when.getMonth() + 1)}-${two(when.getDate())}`
    + `T${two(when.getHours())}:${two(when.getMinutes())}`;
}

// A datetime-local field's value as RFC 3339 (UTC); anything unreadable as typed, for the
// API to refuse in words.
function isoTime(local) {
  const when = new Date(local);
  return Number.isNaN(when.getTime()) ? local : when.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

// A whole number as a number; anything else as typed, for the API to refuse in words.
function whole(value) {
  return /^\d+$/.test(value) ? Number(value) : value;
}

async function deleteKey(k, button) {
  if (!window.confirm(`Delete the key “${k.name}”? Anything using it stops working at once.`)) return;
  button.disabled = true;
  button.classList.add('busy');
  try {
    const answer = await authed('DELETE', `/auth/api-keys/${encodeURIComponent(k.id)}`);
    say($('keys-message'), `${answer.message}: “${k.name}”.`, 'success');
    $('new-key').hidden = true;
    await loadKeys();
  } catch (error) {
    say($('keys-message'), error.message, 'error');
    button.disabled = false;
    button.classList.remove('busy');
  }
}

function optional(form, name) {
  const value = field(form, name).trim();
  return value === '' ? undefined : value;
}

// ------------------------------------------------------------------ wiring

function wire() {
  $('sign-out').addEventListener('click', () => leave('You have signed out.'));

  onSubmit($('unverified'), async () => (await authed('POST', '/auth/resend-verification')).message);

  const master = $('master-key');
  const show = $('show-key');
  show.addEventListener('click', () => {
    const visible = master.type === 'password';
    master.type = visible ? 'text' : 'password';
    show.setAttribute('aria-pressed', String(visible));
  });
  copyButton($('copy-key'), () => master.value, $('key-message'));
  copyButton($('copy-new-key'), () => $('new-key-value').value, $('new-key-message'));

  const regenerate = $('regenerate');
  const open = $('regenerate-open');
  const toggle = (visible) => {
    regenerate.hidden = !visible;
    open.setAttribute('aria-expanded', String(visible));
    if (visible) $('regenerate-password').focus();
    else {
      regenerate.reset();
      say(regenerate.querySelector('.message'), '');
    }
  };
  open.addEventListener('click', () => toggle(regenerate.hidden));
  $('regenerate-cancel').addEventListener('click', () => {
    toggle(false);
    open.focus();
  });
  onSubmit(regenerate, async (form) => {
    const answer = await call('POST', '/auth/regenerate-key', {
      body: { email, password: field(form, 'password') },
    });
    const wasWithoutKey = !key;
    key = answer.apiKey;
    session.start(key);
    master.value = key;
    toggle(false);
    say($('key-message'), 'Your new key is active. Your old key and every scoped key no longer work: paste the new key into Foundry.', 'success');
    legacyKey(false);
    if (wasWithoutKey) {
      keyShown(true);
      $('regenerate-hint').textContent = 'Use this if your key may have leaked.';
      say($('load-message'), '');
      await load();
    } else {
      await loadKeys();
    }
  });

  createScopes = scopePicker($('create-scopes'), 'create-scope');
  editScopes = scopePicker($('edit-scopes'), 'edit-scope');
  onSubmit($('edit-key-form'), saveEdit);
  $('edit-cancel').addEventListener('click', () => $('edit-key').close());
  $('edit-key').addEventListener('close', () => {
    editOpener?.focus();
    editOpener = null;
  });

  onSubmit($('create-key'), async (form) => {
    const body = { name: field(form, 'name').trim() };
    for (const name of ['scopedClientId', 'scopedUserId', 'foundryUrl', 'foundryUsername']) {
      const value = optional(form, name);
      if (value !== undefined) body[name] = value;
    }
    for (const limit of ['monthlyLimit', 'dailyLimit']) {
      const value = optional(form, limit);
      if (value !== undefined) body[limit] = whole(value);
    }
    const expires = optional(form, 'expiresAt');
    if (expires !== undefined) body.expiresAt = isoTime(expires);
    body.scopes = createScopes.get();
    const password = field(form, 'foundryPassword');
    if (password !== '') body.foundryPassword = password;
    const created = await authed('POST', '/auth/api-keys', body);
    form.reset();
    createScopes.set(DEFAULT);
    $('new-key-value').value = created.key;
    $('new-key').hidden = false;
    say($('keys-message'), '');
    await loadKeys();
    $('new-key-value').focus();
    $('new-key-value').select();
    return `Key “${created.name}” created.`;
  });

  onSubmit($('change-password'), async (form) => {
    const answer = await authed('POST', '/auth/change-password', {
      currentPassword: field(form, 'currentPassword'),
      newPassword: field(form, 'newPassword'),
    });
    form.reset();
    loadActivity();
    return `${answer.message}.`;
  });

  onSubmit($('export'), async () => {
    const data = await authed('GET', '/auth/export-data');
    const blob = new Blob([JSON.stringify(data, null, 2)], { type: 'application/json' });
    const link = document.createElement('a');
    link.href = URL.createObjectURL(blob);
    link.download = `foundry-rest-api-data-${new Date().toISOString().slice(0, 10)}.json`;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    return 'Your data was downloaded as a JSON file.';
  });

  onSubmit($('delete-account'), async (form) => {
    const answer = await authed('DELETE', '/auth/account', {
      confirmEmail: field(form, 'confirmEmail'),
      password: field(form, 'password'),
    });
    leave(`${answer.message}. We are sorry to see you go.`);
  });
}
