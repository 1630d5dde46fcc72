import { call } from './api.js';
import { onSubmit, field, say, watchPasswordRules } from './ui.js';

const status = document.getElementById('status');
const form = document.getElementById('reset');

// The token is read once and then removed from the address bar (and so from the history).
const token = new URLSearchParams(location.search).get('reset-token');
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

onSubmit(form, async () => {
  const answer = await call('POST', '/auth/reset-password', {
    body: { token, password: field(form, 'password') },
  });
  form.hidden = true;
  document.getElementById('done-text').textContent = answer.message;
  document.getElementById('done').hidden = false;
});

check();
