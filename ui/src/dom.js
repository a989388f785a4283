// Building the page from data without ever parsing data as HTML.

/** An element: h('a', { href: '#/x', class: 'y', onclick }, 'text', child, ...). */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') element.addEventListener(name.slice(2), value);
    else if (name === 'class') element.className = value;
    else if (value === true) element.setAttribute(name, '');
    else element.setAttribute(name, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** A date and time as the reader's locale shows it; the ISO form on hover. */
export function when(iso) {
  if (!iso) return h('span', { class: 'muted' }, '–');
  const date = new Date(iso);
  // A due date a model wrote in a form Date cannot read is shown as written.
  if (Number.isNaN(date.getTime())) return h('span', {}, iso);
  return h('time', { datetime: iso, title: iso }, date.toLocaleString());
}

/** A table of rows; `columns` are [heading, (row) => cell]. */
export function table(columns, rows, empty = 'Nothing here.') {
  if (!rows.length) return h('p', { class: 'muted' }, empty);
  return h(
    'div',
    { class: 'scroll' },
    h(
      'table',
      {},
      h('thead', {}, h('tr', {}, columns.map(([heading]) => h('th', { scope: 'col' }, heading)))),
      h('tbody', {}, rows.map((row) => h('tr', {}, columns.map(([, cell]) => h('td', {}, cell(row)))))),
    ),
  );
}

/** A problem from the API, shown where the action was. */
export function problem(error) {
  return h('p', { class: 'problem', role: 'alert' }, error.code ? `${error.code}: ${error.message}` : String(error.message || error));
}

export function badge(text, kind = '') {
  return h('span', { class: `badge ${kind}` }, text);
}

/** A JSON value, pretty-printed. */
export function json(value) {
  return h('pre', { class: 'json' }, JSON.stringify(value, null, 2));
}
