import { call } from './api.js';
import { session, onSubmit, field, showCarriedNotice } from './ui.js';

if (session.key() || session.withoutKey()) location.replace('/account');
showCarriedNotice(document.getElementById('notice'));

onSubmit(document.getElementById('signin'), async (form) => {
  const email = field(form, 'email');
  const answer = await call('POST', '/auth/login', {
    body: { email, password: field(form, 'password') },
  });
  // An account imported from the relay 3.x: its key was never seen here
  // (`apiKeyAvailable: false`, `apiKey: null`; an older server sends neither).
  if (answer.apiKey && answer.apiKeyAvailable !== false) session.start(answer.apiKey);
  else session.startWithoutKey(answer.email || email);
  location.assign('/account');
});
