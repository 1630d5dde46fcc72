// What every page shares: the session (the master key, in sessionStorage only), notices
// carried to the next page, forms that show their errors, and copying to the clipboard.

const KEY = 'foundry-auth.master-key';
// An account imported from the relay 3.x signs in without a key this service can show:
// its email stands in for the key until the key is regenerated.
const WITHOUT_KEY = 'foundry-auth.signed-in-without-key';
const NOTICE = 'foundry-auth.notice';

export const session = {
  key: () => sessionStorage.getItem(KEY),
  withoutKey: () => sessionStorage.getItem(WITHOUT_KEY),
  start: (key) => {
    sessionStorage.removeItem(WITHOUT_KEY);
    sessionStorage.setItem(KEY, key);
  },
  startWithoutKey: (email) => {
    sessionStorage.removeItem(KEY);
    sessionStorage.setItem(WITHOUT_KEY, email);
  },
  end: () => {
    sessionStorage.removeItem(KEY);
    sessionStorage.removeItem(WITHOUT_KEY);
  },
};

// A sentence for the next page to show (e.g. "You have signed out.").
export function carryNotice(text, kind = 'success') {
  sessionStorage.setItem(NOTICE, JSON.stringify({ text, kind }));
}

export function showCarriedNotice(element) {
  const raw = sessionStorage.getItem(NOTICE);
  sessionStorage.removeItem(NOTICE);
  if (!raw || !element) return;
  try {
    const { text, kind } = JSON.parse(raw);
    element.textContent = text;
    element.classList.toggle('error', kind === 'error');
    element.hidden = false;
  } catch {
    // an unreadable notice is dropped
  }
}

export function say(element, text, kind) {
  if (!element) return;
  element.classList.remove('error', 'success', 'info');
  if (kind) element.classList.add(kind);
  element.textContent = text ?? '';
}

// Runs `action(form)` on submit: the form's message is cleared, its buttons are disabled
// while the request is in flight, and a failure is shown in words in the form's message.
// `action` may return a sentence to show as success.
export function onSubmit(form, action) {
  const message = form.querySelector('.message');
  // An error is about what was sent: it goes once the person edits the form.
  form.addEventListener('input', () => {
    if (message?.classList.contains('error')) say(message, '');
  });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (form.getAttribute('aria-busy') === 'true') return;
    const submitter = event.submitter ?? form.querySelector('button[type="submit"]');
    const buttons = [...form.querySelectorAll('button')];
    say(message, '');
    form.setAttribute('aria-busy', 'true');
    buttons.forEach((button) => { button.disabled = true; });
    submitter?.classList.add('busy');
    try {
      const done = await action(form);
      if (typeof done === 'string') say(message, done, 'success');
    } catch (error) {
      say(message, error?.message || 'Something went wrong. Please try again.', 'error');
    } finally {
      form.removeAttribute('aria-busy');
      buttons.forEach((button) => { button.disabled = false; });
      submitter?.classList.remove('busy');
    }
  });
}

export function field(form, name) {
  return form.elements.namedItem(name)?.value ?? '';
}

// Copies `text()` and says so in `status` for a moment.
export function copyButton(button, text, status) {
  button.addEventListener('click', async () => {
    const value = text();
    if (!value) return;
    let said;
    try {
      await navigator.clipboard.writeText(value);
      said = 'Copied to the clipboard.';
      say(status, said, 'success');
    } catch {
      said = 'Your browser did not allow copying: select the key and copy it by hand.';
      say(status, said, 'error');
    }
    // Gone after a moment, unless something else has been said there since.
    setTimeout(() => {
      if (status?.textContent === said) say(status, '');
    }, 4000);
  });
}

// Ticks the password rules as the person types (the server checks them again).
export function watchPasswordRules(input, list) {
  if (!input || !list) return;
  const checks = {
    length: (p) => [...p].length >= 8,
    upper: (p) => /[A-Z]/.test(p),
    lower: (p) => /[a-z]/.test(p),
    digit: (p) => /[0-9]/.test(p),
    max: (p) => p.length > 0 && [...p].length <= 128,
  };
  const update = () => {
    for (const item of list.querySelectorAll('li[data-rule]')) {
      const check = checks[item.dataset.rule];
      if (check) item.classList.toggle('met', check(input.value));
    }
  };
  input.addEventListener('input', update);
  update();
}
