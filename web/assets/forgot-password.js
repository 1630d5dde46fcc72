import { call } from './api.js';
import { onSubmit, field } from './ui.js';

onSubmit(document.getElementById('forgot'), async (form) => {
  const keyLeaked = form.elements.namedItem('keyLeaked').checked;
  const answer = await call('POST', '/auth/forgot-password', { body: { email: field(form, 'email'), keyLeaked } });
  return `${answer.message} Check your inbox (and the spam folder): the link works for one hour.`;
});
