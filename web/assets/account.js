// The account page: the master key, usage, scoped keys, password, data export and deletion.
import { call } from './api.js';
import { session, onSubmit, field, say, copyButton, carryNotice, showCarriedNotice } from './ui.js';

const $ = (id) => document.getElementById(id);
let key = session.key();
let email = '';

function leave(text, kind) {
  session.end();
  if (text) carryNotice(text, kind);
  location.replace('/');
}

if (!key) {
  leave();
} else {
  showCarriedNotice($('notice'));
  wire();
  load();
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

function showUser(user) {
  email = user.email;
  $('who').textContent = `Signed in as ${user.email}.`;
  $('master-key').value = key;
  const limits = user.limits ?? {};
  usage('today', user.requestsToday, limits.dailyLimit, 'day-limit-text');
  usage('month', user.requestsThisMonth, limits.unlimitedMonthly ? null : limits.monthlyLimit, 'month-limit-text');
  const status = user.subscriptionStatus || 'free';
  const badge = $('subscription');
  badge.textContent = status === 'active' ? 'Active subscription' : status === 'free' ? 'Free plan' : status;
  badge.className = `badge ${status === 'active' ? 'ok' : ''}`;
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

function showKeys(keys) {
  const body = $('keys').tBodies[0];
  body.replaceChildren();
  if (keys.length === 0) {
    const row = body.insertRow();
    const td = row.insertCell();
    td.colSpan = 8;
    td.className = 'empty';
    td.textContent = 'No scoped keys yet. Create one above for each bot or tool.';
    return;
  }
  const numbers = new Intl.NumberFormat();
  for (const k of keys) {
    const row = body.insertRow();
    const name = cell(row, 'Name', k.name);
    name.id = `key-name-${k.id}`;
    const prefix = document.createElement('code');
    prefix.textContent = k.key;
    cell(row, 'Key', prefix);
    const scope = [
      k.scopedClientId ? `client ${k.scopedClientId}` : '',
      k.scopedUserId ? `user ${k.scopedUserId}` : '',
    ].filter(Boolean).join(', ');
    cell(row, 'Scope', scope || 'Whole account');
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
    const remove = document.createElement('button');
    remove.type = 'button';
    remove.className = 'danger small';
    remove.textContent = 'Delete';
    remove.setAttribute('aria-describedby', name.id);
    remove.addEventListener('click', () => deleteKey(k, remove));
    cell(row, '', remove);
  }
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
    key = answer.apiKey;
    session.start(key);
    master.value = key;
    toggle(false);
    say($('key-message'), 'Your new key is active. Your old key and every scoped key no longer work: paste the new key into Foundry.', 'success');
    await loadKeys();
  });

  onSubmit($('create-key'), async (form) => {
    const body = { name: field(form, 'name').trim() };
    for (const name of ['scopedClientId', 'scopedUserId', 'foundryUrl', 'foundryUsername']) {
      const value = optional(form, name);
      if (value !== undefined) body[name] = value;
    }
    const limit = optional(form, 'monthlyLimit');
    if (limit !== undefined) body.monthlyLimit = /^\d+$/.test(limit) ? Number(limit) : limit;
    const expires = optional(form, 'expiresAt');
    if (expires !== undefined) {
      const when = new Date(expires);
      body.expiresAt = Number.isNaN(when.getTime()) ? expires : when.toISOString().replace(/\.\d{3}Z$/, 'Z');
    }
    const password = field(form, 'foundryPassword');
    if (password !== '') body.foundryPassword = password;
    const created = await authed('POST', '/auth/api-keys', body);
    form.reset();
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
