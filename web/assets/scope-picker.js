// A scope picker: the catalogue's scopes as checkboxes in one fieldset per area, a count,
// "Default set" and "None", and a warning while a scope that runs code is ticked.
import { AREAS, SCOPES, ALL, DEFAULT } from './scopes.js';

// Fills `fieldset` (which holds the legend, and any hint); `prefix` keeps ids unique.
// Returns { get(): names ticked, in catalogue order; set(names) }.
export function scopePicker(fieldset, prefix) {
  const tools = document.createElement('div');
  tools.className = 'scope-tools';
  const count = document.createElement('span');
  count.className = 'scope-count';
  count.id = `${prefix}-count`;
  count.setAttribute('aria-live', 'polite');
  const preset = (text, names) => {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'small';
    button.textContent = text;
    button.setAttribute('aria-describedby', count.id);
    button.addEventListener('click', () => {
      set(names);
      fieldset.dispatchEvent(new Event('input', { bubbles: true }));
    });
    return button;
  };
  tools.append(count, preset('Default set', DEFAULT), preset('None', []));

  const areas = document.createElement('div');
  areas.className = 'scope-areas';
  const boxes = new Map();
  for (const area of AREAS) {
    const group = document.createElement('fieldset');
    group.className = `scope-area${area.id === 'dangerous' ? ' dangerous' : ''}`;
    const legend = document.createElement('legend');
    legend.textContent = area.label;
    group.append(legend);
    for (const scope of SCOPES.filter((s) => s.area === area.id)) {
      const id = `${prefix}-${scope.name.replace(/[^a-z0-9]/gi, '-')}`;
      const row = document.createElement('div');
      row.className = 'check';
      const box = document.createElement('input');
      box.type = 'checkbox';
      box.id = id;
      box.value = scope.name;
      const label = document.createElement('label');
      label.htmlFor = id;
      const name = document.createElement('code');
      name.textContent = scope.name;
      const text = document.createElement('span');
      text.className = 'what';
      text.textContent = scope.text;
      label.append(name, ' ', text);
      if (scope.dangerous) {
        const mark = document.createElement('span');
        mark.className = 'badge off';
        mark.textContent = 'dangerous';
        label.append(' ', mark);
      }
      row.append(box, label);
      group.append(row);
      boxes.set(scope.name, box);
    }
    areas.append(group);
  }

  const warning = document.createElement('p');
  warning.className = 'callout warning';
  warning.setAttribute('role', 'alert');
  warning.hidden = true;

  fieldset.append(tools, areas, warning);

  const get = () => ALL.filter((name) => boxes.get(name).checked);
  const update = () => {
    const ticked = get();
    count.textContent = `${ticked.length} of ${ALL.length} scopes ticked`;
    const risky = SCOPES.filter((s) => s.dangerous && boxes.get(s.name).checked).map((s) => s.name);
    warning.hidden = risky.length === 0;
    warning.textContent = risky.length === 0 ? '' : `Careful: ${list(risky)} can run any code in your world, `
      + 'with your permissions as the game master. Grant them only to a tool you trust as much as yourself.';
  };
  const set = (names) => {
    for (const [name, box] of boxes) box.checked = names.includes(name);
    update();
  };
  areas.addEventListener('change', update);
  set(DEFAULT);
  return { get, set };
}

function list(names) {
  const quoted = names.map((n) => `“${n}”`);
  return quoted.length === 1 ? quoted[0] : `${quoted.slice(0, -1).join(', ')} and ${quoted.at(-1)}`;
}
