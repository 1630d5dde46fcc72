import { call } from './api.js';
import { onSubmit } from './ui.js';

const form = document.getElementById('verify');

// The token is read once and then removed from the address bar (and so from the history).
// It is sent only when the owner presses the button, so that a mail scanner that opens
// the link does not use it up.
const token = new URLSearchParams(location.search).get('verify-token');
if (location.search) history.replaceState(null, '', location.pathname);

function invalid(text) {
  form.hidden = true;
  document.getElementById('invalid-text').textContent = text;
  document.getElementById('invalid').hidden = false;
}

if (token) {
  form.hidden = false;
} else {
  invalid('This page needs the link from your verification email, and this address has no verification token.');
}

onSubmit(form, async () => {
  try {
    const answer = await call('POST', '/auth/verify-email', { body: { token } });
    form.hidden = true;
    document.getElementById('done-text').textContent = answer.message;
    document.getElementById('done').hidden = false;
  } catch (error) {
    if (error.code === 'invalid_verification_token') {
      invalid('This verification link is invalid, has expired or was already used.');
      return;
    }
    throw error;
  }
});
