import { call } from './api.js';
import { onSubmit, field } from './ui.js';

onSubmit(document.getElementById('forgot'), async (form) => {
  const answer = await call('POST', '/auth/forgot-password', { body: { email: field(form, 'email') } });
  return `${answer.message} Check your inbox (and the spam folder): the link works for one hour.`;
});
