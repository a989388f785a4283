// An instance (or a workflow) on its own BPMN diagram, with bpmn-js's viewer.
// The bpmn.io watermark the viewer draws stays visible, as its licence asks.

import NavigatedViewer from 'bpmn-js/lib/NavigatedViewer';
import 'bpmn-js/dist/assets/diagram-js.css';
import 'bpmn-js/dist/assets/bpmn-js.css';
import 'bpmn-js/dist/assets/bpmn-font/css/bpmn.css';
import { h } from './dom.js';

/**
 * Draws `xml` into `container` and marks it with `overlays`:
 * { waiting: {element: count}, ran: {element: count}, terminated: Set, incidents: {element: message},
 *   due: {element: iso}, activated: Set(element ids) }. A sequence flow between two elements
 * that both ran is drawn as taken. `onPick(elementId)` is called on a click.
 */
export async function drawDiagram(container, xml, overlays, onPick) {
  const viewer = new NavigatedViewer({ container });
  try {
    await viewer.importXML(xml);
  } catch (error) {
    container.replaceChildren(h('p', { class: 'problem' }, `The diagram cannot be drawn: ${error.message}`));
    return null;
  }
  const canvas = viewer.get('canvas');
  const registry = viewer.get('elementRegistry');
  const layer = viewer.get('overlays');
  const has = (id) => Boolean(registry.get(id));
  const badge = (id, position, text, kind, title) => {
    if (!has(id)) return;
    const html = h('span', { class: `diagram-badge ${kind}`, title: title || text, 'data-element': id }, text);
    layer.add(id, { position, html });
  };
  const activated = overlays.activated || new Set();
  for (const flow of registry.filter((e) => e.type === 'bpmn:SequenceFlow')) {
    if (activated.has(flow.source?.id) && activated.has(flow.target?.id)) canvas.addMarker(flow.id, 'taken');
  }
  for (const [id, count] of Object.entries(overlays.ran || {})) {
    if (!has(id)) continue;
    canvas.addMarker(id, 'ran');
    badge(id, { bottom: 12, left: -8 }, `${count}`, 'ran', `ran ${count} time(s) in this instance`);
  }
  for (const id of overlays.terminated || []) if (has(id)) canvas.addMarker(id, 'terminated');
  for (const [id, count] of Object.entries(overlays.waiting || {})) {
    if (!has(id)) continue;
    canvas.addMarker(id, 'waiting');
    badge(id, { top: -12, left: -8 }, `${count}`, 'waiting', `${count} token(s) wait here`);
  }
  for (const [id, message] of Object.entries(overlays.incidents || {})) {
    if (!has(id)) continue;
    canvas.addMarker(id, 'incident');
    badge(id, { top: -12, right: 12 }, '!', 'incident', message);
  }
  for (const [id, due] of Object.entries(overlays.due || {})) {
    badge(id, { bottom: -6, right: 40 }, new Date(due).toLocaleString(), 'due', `due ${due}`);
  }
  if (onPick) {
    viewer.get('eventBus').on('element.click', (event) => {
      if (event.element && event.element.type !== 'bpmn:Process') onPick(event.element.id);
    });
  }
  canvas.zoom('fit-viewport', 'auto');
  return viewer;
}

/** Zoom buttons for a drawn diagram. */
export function zoomControls(viewer) {
  if (!viewer) return null;
  const canvas = viewer.get('canvas');
  const step = (factor) => canvas.zoom(canvas.zoom() * factor);
  return h(
    'div',
    { class: 'zoom' },
    h('button', { type: 'button', onclick: () => step(1.2), 'aria-label': 'Zoom in' }, '+'),
    h('button', { type: 'button', onclick: () => step(1 / 1.2), 'aria-label': 'Zoom out' }, '−'),
    h('button', { type: 'button', onclick: () => canvas.zoom('fit-viewport', 'auto') }, 'Fit'),
  );
}
