import { call } from './api.js';
import { session, onSubmit, field, carryNotice, watchPasswordRules } from './ui.js';

const form = document.getElementById('signup');
watchPasswordRules(form.elements.namedItem('password'), document.getElementById('password-rules'));

onSubmit(form, async () => {
  const answer = await call('POST', '/auth/register', {
    body: { email: field(form, 'email'), password: field(form, 'password') },
  });
  session.start(answer.apiKey);
  carryNotice('Your account is ready. Copy your master API key below into the Foundry REST API module\'s settings.');
  location.assign('/account');
});
