import { call } from './api.js';
import { onSubmit, field, say, watchPasswordRules, copyButton } from './ui.js';

const status = document.getElementById('status');
const form = document.getElementById('reset');

// The token is read once and then removed from the address bar (and so from the history).
const query = new URLSearchParams(location.search);
const token = query.get('reset-token');
// The link of "I think my API key leaked" ticks the replacement of every key.
form.elements.namedItem('revokeKeys').checked = query.get('revoke-keys') === '1';
if (location.search) history.replaceState(null, '', location.pathname);

function invalid(text) {
  status.hidden = true;
  document.getElementById('invalid-text').textContent = text;
  document.getElementById('invalid').hidden = false;
}

async function check() {
  if (!token) {
    invalid('This page needs the link from your password reset email, and this address has no reset token.');
    return;
  }
  try {
    const answer = await call('GET', `/auth/validate-reset-token/${encodeURIComponent(token)}`);
    if (!answer.valid) {
      invalid('This reset link is invalid or has expired.');
      return;
    }
    status.hidden = true;
    form.hidden = false;
    form.elements.namedItem('password').focus();
  } catch (error) {
    say(status, error.message, 'error');
    status.setAttribute('role', 'alert');
  }
}

watchPasswordRules(form.elements.namedItem('password'), document.getElementById('password-rules'));
copyButton(
  document.getElementById('copy-new-key'),
  () => document.getElementById('new-key').value,
  document.getElementById('new-key-message'),
);

onSubmit(form, async () => {
  const revokeKeys = form.elements.namedItem('revokeKeys').checked;
  const answer = await call('POST', '/auth/reset-password', {
    body: { token, password: field(form, 'password'), revokeKeys },
  });
  form.hidden = true;
  document.getElementById('done-text').textContent = answer.message;
  if (answer.apiKey) {
    document.getElementById('key-unchanged').hidden = true;
    document.getElementById('new-key').value = answer.apiKey;
    document.getElementById('key-replaced').hidden = false;
  }
  document.getElementById('done').hidden = false;
});

check();
