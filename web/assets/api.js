// Calls to the /auth routes of this same origin, and the words shown when one fails.

export class ApiError extends Error {
  constructor(message, status, retryAfter, code = '') {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

// Plain words beside the API's messages that name a field as the wire does.
const HINTS = {
  invalid_monthly_limit: 'Enter the monthly limit as a whole number, such as 500, or leave it empty.',
  invalid_daily_limit: 'Enter the daily limit as a whole number, such as 100, or leave it empty.',
  invalid_scopes: 'Tick the scopes from the list; reload the page if it is out of date.',
  invalid_expires_at: 'Choose an expiry date and time in the future, or leave it empty.',
  invalid_foundry_url: 'Enter the address of your Foundry server, starting with https:// or http://.',
};

// One request; resolves to the JSON answer, or throws an ApiError whose message is the
// API's own `error` (plus when to try again, for a 429 or a 503).
export async function call(method, path, { body, key } = {}) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (key) headers['x-api-key'] = key;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'omit',
      referrerPolicy: 'no-referrer',
    });
  } catch {
    throw new ApiError('The server could not be reached. Check your internet connection and try again.', 0, 0);
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (response.ok && data !== null) return data;
  const retryAfter = Number.parseInt(response.headers.get('retry-after') ?? '', 10) || 0;
  let message = data && typeof data.error === 'string' && data.error
    ? data.error
    : `Something went wrong on the server (HTTP ${response.status}). Please try again in a moment.`;
  if (!/[.!?]$/.test(message)) message += '.';
  const code = data && typeof data.code === 'string' ? data.code : '';
  if (HINTS[code]) message += ` ${HINTS[code]}`;
  if ((response.status === 429 || response.status === 503) && retryAfter > 0) {
    message += ` ${whenToRetry(retryAfter)}`;
  }
  throw new ApiError(message, response.status, retryAfter, code);
}

// "You can try again in 15 minutes, at 21:05."
export function whenToRetry(seconds, now = new Date()) {
  const at = new Date(now.getTime() + seconds * 1000);
  const clock = at.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  let wait;
  if (seconds < 60) wait = `${seconds} second${seconds === 1 ? '' : 's'}`;
  else if (seconds < 2 * 3600) {
    const minutes = Math.ceil(seconds / 60);
    wait = `${minutes} minute${minutes === 1 ? '' : 's'}`;
  } else {
    const hours = Math.ceil(seconds / 3600);
    wait = `${hours} hours`;
  }
  return `You can try again in ${wait}, at ${clock}.`;
}
