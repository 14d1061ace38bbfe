// Building elements without innerHTML: names and notes come from people, never as markup.

/// `h('li', {class: 'x', onclick: f}, 'text', child)`.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else if (name === 'dataset') Object.assign(el.dataset, value);
    else el.setAttribute(name, value === true ? '' : value);
  }
  el.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

export const $ = (selector, root = document) => root.querySelector(selector);

/// Shows one of the page's screens (`section[data-screen]`), hides the rest.
export function show(name) {
  for (const s of document.querySelectorAll('[data-screen]')) s.hidden = s.dataset.screen !== name;
  document.body.dataset.view = name;
}

/// Fills a `<table>`: a header row, then a row per entry (cells are text or elements), or one
/// row with `empty` when there are none.
export function table(el, head, rows, empty = '') {
  el.replaceChildren(
    h('thead', {}, h('tr', {}, head.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, rows.length ? rows.map((r) => h('tr', {}, r.map((c) => h('td', {}, c))))
      : h('tr', {}, h('td', { colspan: head.length, class: 'muted' }, empty))),
  );
}
