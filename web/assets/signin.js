import { call } from './api.js';
import { session, onSubmit, field, showCarriedNotice } from './ui.js';

if (session.key()) location.replace('/account');
showCarriedNotice(document.getElementById('notice'));

onSubmit(document.getElementById('signin'), async (form) => {
  const answer = await call('POST', '/auth/login', {
    body: { email: field(form, 'email'), password: field(form, 'password') },
  });
  session.start(answer.apiKey);
  location.assign('/account');
});
