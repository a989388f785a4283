// The console: a page per hash route (#/instances, #/instances/ID, #/workflows,
// #/tasks, #/incidents), each drawn from the /v1 API and redrawn while shown.

import './style.css';
import { ApiError, all, get, post, query, setToken, token } from './api.js';
import { badge, h, json, problem, table, when } from './dom.js';
import { drawDiagram, zoomControls } from './diagram.js';
import { describeSource, taskForm } from './taskform.js';
import { finishSignIn, startSignIn } from './signin.js';

const page = document.getElementById('page');
/** The outcome of the last action, kept above the page: the page is redrawn after an action, and its own outcome with it. */
const notice = document.getElementById('notice');
/** How often a shown page asks the API again (see docs/design.md, "The console"). */
const REFRESH_MS = 3000;
let refresh = null;
let generation = 0;
/** Who the user is and which routes they may call (`GET /v1/me`): the pages offer only those. */
let me = { may: [] };

/** Whether the user may call `route` ("post /v1/instances/{id}/cancel"). */
function may(route) {
  return me.may.includes(route);
}

const STATUSES = ['running', 'suspended', 'completed', 'cancelled', 'failed'];
const WAITING = ['job', 'user_task', 'timer', 'message', 'signal', 'call'];

function route() {
  const [path, search = ''] = location.hash.replace(/^#/, '').split('?');
  return { parts: path.split('/').filter(Boolean).map(decodeURIComponent), params: new URLSearchParams(search) };
}

async function show() {
  clearInterval(refresh);
  refresh = null;
  const mine = ++generation;
  const { parts, params } = route();
  for (const link of document.querySelectorAll('header nav a')) {
    link.toggleAttribute('aria-current', link.getAttribute('href') === `#/${parts[0] || 'instances'}`);
  }
  document.getElementById('who').replaceChildren(
    token() ? h('button', { type: 'button', class: 'link', onclick: () => { setToken(null); show(); } }, 'Sign out') : '',
  );
  const draw = async () => {
    me = await get('/v1/me');
    const content = await view(parts, params);
    if (mine === generation) page.replaceChildren(content);
  };
  try {
    await draw();
  } catch (error) {
    if (mine !== generation) return;
    page.replaceChildren(error instanceof ApiError && error.status === 401 ? await login(error) : h('section', {}, h('h1', {}, 'Something went wrong'), problem(error)));
  }
}

function view(parts, params) {
  switch (parts[0] || 'instances') {
    case 'instances':
      return parts[1] ? instancePage(parts.slice(1).join('/')) : instancesPage(params);
    case 'workflows':
      return parts[1] ? workflowPage(parts[1], parts[2], parts[3]) : workflowsPage();
    case 'tasks':
      return parts[1] ? taskPage(parts.slice(1).join('/')) : tasksPage(params);
    case 'incidents':
      return incidentsPage();
    default:
      return h('section', {}, h('h1', {}, 'Not found'), h('p', {}, 'No page here. ', h('a', { href: '#/instances' }, 'Instances')));
  }
}

/** Runs `draw` once `element` is in the page: bpmn-js measures its container. */
function whenShown(element, draw) {
  const attempt = (left) => {
    if (element.isConnected && element.clientWidth > 0) draw();
    else if (left > 0) requestAnimationFrame(() => attempt(left - 1));
  };
  requestAnimationFrame(() => attempt(600));
}

/** Redraws the page every few seconds while nobody is typing in it. */
function keepFresh(redraw) {
  refresh = setInterval(async () => {
    if (page.contains(document.activeElement) && ['INPUT', 'TEXTAREA', 'SELECT'].includes(document.activeElement.tagName)) return;
    try {
      const mine = generation;
      const content = await redraw();
      if (mine === generation && content) page.replaceChildren(content);
    } catch {
      // The next turn tries again; a lasting failure shows on the next navigation.
    }
  }, REFRESH_MS);
}

/** Why the last sign-in at the issuer failed, shown on the sign-in page. */
let signInProblem = null;

async function login(error) {
  const how = await get('/v1/sign-in').catch(() => ({ method: 'token', oidc: null }));
  const said = signInProblem || error;
  signInProblem = null;
  if (how.method === 'oidc' && how.oidc?.client_id) {
    const out = h('div', { role: 'status' });
    return h(
      'section',
      { class: 'login' },
      h('h1', {}, 'Sign in'),
      h('p', {}, 'This server takes accounts from ', h('code', {}, how.oidc.issuer), '.'),
      problem(said),
      h('button', {
        type: 'button',
        class: 'primary',
        onclick: () => startSignIn(how.oidc).catch((e) => out.replaceChildren(problem(e))),
      }, 'Sign in at the issuer'),
      out,
    );
  }
  if (how.method === 'oidc') {
    return h('section', { class: 'login' }, h('h1', {}, 'Sign in'), problem(said),
      h('p', {}, 'This server takes tokens from ', h('code', {}, how.oidc?.issuer || 'an OpenID Connect issuer'),
        '; the console signs in there once the server is started with ', h('code', {}, '--oidc-console-client-id'), '.'));
  }
  const input = h('input', { type: 'password', name: 'token', autocomplete: 'off', required: true, 'aria-label': 'API token' });
  return h(
    'section',
    { class: 'login' },
    h('h1', {}, 'Sign in'),
    h('p', {}, 'This server needs an API token (', h('code', {}, 'baton tokens create'), ', or the first admin token in ', h('code', {}, '<db>.admin-token'), ').'),
    problem(said),
    h(
      'form',
      { onsubmit: (event) => { event.preventDefault(); setToken(input.value.trim()); show(); } },
      h('label', {}, 'Token ', input),
      h('button', { type: 'submit' }, 'Sign in'),
    ),
  );
}

/**
 * A button that asks first when `question` is given, runs `act`, and shows
 * what the API said; not offered at all when the user may not call `route`.
 */
function action(label, act, { question, kind = '', route } = {}) {
  if (route && !may(route)) return null;
  const out = h('span', { class: 'outcome', role: 'status' });
  const button = h('button', {
    type: 'button',
    class: kind,
    onclick: async () => {
      if (question && !confirm(question)) return;
      button.disabled = true;
      out.replaceChildren();
      try {
        await act();
        out.replaceChildren('done');
        notice.replaceChildren(`${label}: done`);
        await show();
      } catch (error) {
        out.replaceChildren(problem(error));
      } finally {
        button.disabled = false;
      }
    },
  }, label);
  return h('span', { class: 'action' }, button, out);
}

function statusBadge(status) {
  return badge(status, `status-${status}`);
}

// ----- instances -----

/** Counts by status from the counts the API keeps: for a workflow (and version) when the list is narrowed to one. */
async function statusCounts(filters) {
  return get(`/v1/instances/counts${query({ tenant: filters.tenant, workflow: filters.workflow, version: filters.workflow ? filters.version : undefined })}`);
}

/** Runs `act` on each id, showing how far it got and what was refused. */
async function runBatch(label, ids, act, progress) {
  let done = 0;
  const failed = [];
  for (const id of ids) {
    try {
      await act(id);
    } catch (error) {
      failed.push(`${id}: ${error.message}`);
    }
    done += 1;
    progress.replaceChildren(`${label}: ${done} of ${ids.length}${failed.length ? `, ${failed.length} refused` : ''}`);
  }
  if (failed.length) progress.append(h('ul', {}, failed.map((f) => h('li', {}, f))));
  return failed.length === 0;
}

/** Retries every open incident of one instance (and of the instances it called). */
async function retryInstance(id, reason) {
  const incidents = await all(`/v1/incidents${query({ instance_id: id, descendants: true })}`);
  for (const incident of incidents) {
    const instance = await get(`/v1/instances/${encodeURIComponent(incident.instance_id)}`);
    await retry(incident, instance, reason);
  }
}

async function instancesPage(params) {
  const filters = Object.fromEntries(params.entries());
  const [list, counts] = await Promise.all([get(`/v1/instances${query({ ...filters, limit: 50 })}`), statusCounts(filters)]);
  const field = (name, label, input) => h('label', {}, label, input || h('input', { name, value: filters[name] || '' }));
  const select = (name, options) =>
    h('select', { name }, h('option', { value: '' }, 'any'), options.map((o) => h('option', { value: o, selected: filters[name] === o }, o)));
  const form = h(
    'form',
    {
      class: 'filters',
      onsubmit: (event) => {
        event.preventDefault();
        const data = new FormData(event.target);
        location.hash = `#/instances${query(Object.fromEntries([...data.entries()].filter(([, v]) => v !== '')))}`;
      },
    },
    field('status', 'Status', select('status', STATUSES)),
    field('workflow', 'Workflow'),
    field('version', 'Version', h('input', { name: 'version', type: 'number', min: 1, value: filters.version || '', size: 4 })),
    field('business_key', 'Business key'),
    field('waiting', 'Waiting for', select('waiting', WAITING)),
    field('has_incidents', 'Incidents', select('has_incidents', ['true', 'false'])),
    field('label', 'Label (name=value)'),
    field('variable', 'Variable (name=json)'),
    field('started_after', 'Started after'),
    field('started_before', 'Started before'),
    field('ended_after', 'Ended after'),
    field('ended_before', 'Ended before'),
    field('parent_id', 'Parent'),
    field('root_id', 'Root'),
    field('tenant', 'Tenant'),
    h('input', { type: 'hidden', name: 'order', value: filters.order || '' }),
    h('button', { type: 'submit' }, 'Filter'),
  );
  const selected = new Set();
  const check = (row) =>
    h('input', { type: 'checkbox', 'aria-label': `select ${row.id}`, onchange: (e) => (e.target.checked ? selected.add(row.id) : selected.delete(row.id)) });
  const progress = h('span', { role: 'status', class: 'outcome' });
  const everyMatch = h('input', { type: 'checkbox', 'aria-label': 'apply to every instance that matches the filter' });
  /** The ids to act on: the ticked ones, or (with "all that match") every page of the filter. */
  const targets = async () => {
    if (!everyMatch.checked) return [...selected];
    const { after, ...rest } = filters;
    return (await all(`/v1/instances${query(rest)}`, 500)).map((i) => i.id);
  };
  const batch = (label, route, act, question) =>
    may(route) && h('button', {
      type: 'button',
      onclick: async () => {
        const ids = await targets();
        if (!ids.length) return progress.replaceChildren(everyMatch.checked ? 'no instance matches' : 'select instances first');
        if (question && !confirm(`${question} (${ids.length} instances)`)) return;
        if (await runBatch(label, ids, act, progress)) {
          notice.replaceChildren(`${label}: ${ids.length} done`);
          await show();
        }
      },
    }, label);
  const reason = (label) => `batch ${label.toLowerCase()} from the console`;
  const operate = (path) => (id) => post(`/v1/instances/${encodeURIComponent(id)}/${path}`, { reason: reason(path) });
  const next = list.next ? h('a', { class: 'button', href: `#/instances${query({ ...filters, after: list.next })}` }, 'Next page →') : null;
  // Sortable by the orders the API pages through with an index: start time, workflow, status (each then by start time).
  const order = filters.order || 'started';
  const sortable = (label, key) => {
    const current = order.replace(/^-/, '') === key;
    const descending = current && order.startsWith('-');
    const next = current && !descending ? `-${key}` : key;
    return h('a', {
      href: `#/instances${query({ ...filters, after: undefined, order: next === 'started' ? undefined : next })}`,
      title: `sort by ${label.toLowerCase()}`,
      'aria-sort': current ? (descending ? 'descending' : 'ascending') : null,
    }, label, current ? (descending ? ' ▼' : ' ▲') : '');
  };
  const scope = filters.workflow ? `${filters.workflow}${filters.version ? ` v${filters.version}` : ''}` : 'all workflows';
  return h(
    'section',
    {},
    h('h1', {}, 'Instances'),
    h('p', { class: 'counts' },
      h('span', { class: 'muted' }, `${scope}: ${counts.total} instances `),
      STATUSES.map((status) => h('a', { href: `#/instances${query({ ...filters, after: undefined, status })}` }, statusBadge(status), ` ${counts.by_status[status]} `)),
      h('a', { href: `#/instances${query({ ...filters, after: undefined, has_incidents: 'true' })}` }, badge('incidents', 'incident'), ` ${counts.with_incidents}`)),
    form,
    h('div', { class: 'batch' },
      h('label', {}, everyMatch, ' all that match'),
      batch('Cancel', 'post /v1/instances/{id}/cancel', operate('cancel'), 'Cancel these instances? Their work stops.'),
      batch('Suspend', 'post /v1/instances/{id}/suspend', operate('suspend')),
      batch('Resume', 'post /v1/instances/{id}/resume', operate('resume')),
      batch('Retry incidents', 'post /v1/incidents/{key}/resolve', (id) => retryInstance(id, reason('retry'))),
      progress),
    table(
      [
        ['', check],
        ['Instance', (r) => h('a', { href: `#/instances/${encodeURIComponent(r.id)}` }, r.id)],
        [sortable('Workflow', 'workflow'), (r) => `${r.workflow} v${r.version}`],
        ['Tenant', (r) => r.tenant],
        [sortable('Status', 'status'), (r) => statusBadge(r.status)],
        ['Business key', (r) => r.business_key || ''],
        ['Waiting for', (r) => r.waiting.join(', ')],
        ['Incidents', (r) => (r.incidents + r.descendant_incidents ? badge(String(r.incidents + r.descendant_incidents), 'incident') : '')],
        [sortable('Started', 'started'), (r) => when(r.started_at)],
        ['Ended', (r) => when(r.ended_at)],
      ],
      list.items,
      'No instance matches.',
    ),
    next,
  );
}

async function instancePage(id) {
  const content = await instanceContent(id);
  // Redrawn when the instance changed (its update count, its open incidents), not on every turn.
  let seen = null;
  const version = async () => {
    const [instance, incidents] = await Promise.all([get(`/v1/instances/${encodeURIComponent(id)}`), get(`/v1/incidents${query({ instance_id: id, state: 'all', limit: 1000 })}`)]);
    return JSON.stringify([instance.update_count, instance.status, instance.waits.length, incidents.items.map((i) => i.state)]);
  };
  seen = await version();
  keepFresh(async () => {
    const now = await version();
    if (now === seen) return null;
    seen = now;
    return instanceContent(id);
  });
  return content;
}

async function instanceContent(id) {
  const path = `/v1/instances/${encodeURIComponent(id)}`;
  const [instance, history, incidents] = await Promise.all([get(path), all(`${path}/history`), all(`/v1/incidents${query({ instance_id: id, state: 'all' })}`)]);
  const workflow = await get(`/v1/workflows/${encodeURIComponent(instance.workflow)}/versions/${instance.version}${query({ tenant: instance.tenant })}`);
  const open = incidents.filter((i) => i.state === 'open');
  const overlays = { waiting: {}, ran: {}, terminated: new Set(), incidents: {}, due: {}, activated: new Set() };
  for (const wait of instance.waits) {
    overlays.waiting[wait.element] = (overlays.waiting[wait.element] || 0) + 1;
    if (wait.due_at) overlays.due[wait.element] = wait.due_at;
  }
  for (const entry of history) {
    if (entry.event === 'activated') overlays.activated.add(entry.element);
    if (entry.event === 'completed') overlays.ran[entry.element] = (overlays.ran[entry.element] || 0) + 1;
    if (entry.event === 'terminated') overlays.terminated.add(entry.element);
  }
  for (const incident of open) overlays.incidents[incident.element_id] = incident.message;

  const detail = h('aside', { class: 'element-detail', 'aria-live': 'polite' }, h('p', { class: 'muted' }, 'Click an element to see what ran there, or to plan a change.'));
  // The planned modification: elements to activate and to terminate, picked on the diagram.
  const plan = { activate: new Set(), terminate: new Set() };
  let viewer = null;
  const planView = h('div', { class: 'plan' });
  const mayModify = may('post /v1/instances/{id}/modify') && ['running', 'suspended'].includes(instance.status);
  const drawPlan = () => {
    if (viewer) {
      const canvas = viewer.get('canvas');
      for (const element of viewer.get('elementRegistry').getAll()) {
        canvas.removeMarker(element.id, 'to-activate');
        canvas.removeMarker(element.id, 'to-terminate');
      }
      for (const id of plan.activate) canvas.addMarker(id, 'to-activate');
      for (const id of plan.terminate) canvas.addMarker(id, 'to-terminate');
    }
    const items = [
      ...[...plan.activate].map((id) => ['activate', id]),
      ...[...plan.terminate].map((id) => ['terminate', id]),
    ];
    planView.replaceChildren(
      items.length
        ? h('ul', {}, items.map(([kind, id]) => h('li', {}, `${kind} ${id} `,
            h('button', { type: 'button', class: 'link', 'aria-label': `drop ${kind} ${id}`, onclick: () => { plan[kind].delete(id); drawPlan(); } }, 'drop'))))
        : h('p', { class: 'muted' }, 'No change planned: pick elements on the diagram (or in the list) to activate or terminate.'),
    );
  };
  const planned = (kind, element) => h('button', { type: 'button', onclick: () => {
    plan[kind === 'activate' ? 'terminate' : 'activate'].delete(element);
    plan[kind].add(element);
    drawPlan();
  } }, kind === 'activate' ? `Activate ${element}` : `Terminate ${element}`);
  const pick = (element) => {
    const entries = history.filter((e) => e.element === element);
    detail.replaceChildren(
      h('h3', {}, element),
      mayModify ? h('p', { class: 'actions' }, planned('activate', element), instance.waits.some((w) => w.element === element) ? planned('terminate', element) : null) : null,
      table(
        [
          ['Event', (e) => e.event],
          ['At', (e) => when(e.at)],
          ['Iteration', (e) => e.iteration ?? e.loop_counter ?? ''],
          ['Run', (e) => e.run],
          ['Job', (e) => (e.job ? `${e.job.type} attempt ${e.job.attempt}` : '')],
          ['Task', (e) => (e.task ? `completed by ${e.task.completed_by || '?'}` : '')],
          ['By', (e) => e.actor || ''],
          ['Payload', (e) => (e.variables ? json(e.variables) : '')],
        ],
        entries,
        'Nothing ran here in this instance.',
      ),
    );
  };
  const canvas = h('div', { class: 'diagram', role: 'img', 'aria-label': `diagram of ${instance.workflow}` });
  const diagram = h('div', { class: 'diagram-box' }, canvas);
  const elementChoice = h('select', { 'aria-label': 'element to plan a change for' }, h('option', { value: '' }, 'or choose an element'));
  elementChoice.addEventListener('change', () => elementChoice.value && pick(elementChoice.value));
  whenShown(canvas, async () => {
    viewer = await drawDiagram(canvas, workflow.xml, overlays, pick);
    if (!viewer) return;
    diagram.prepend(zoomControls(viewer));
    const flowNodes = viewer.get('elementRegistry').filter((e) => e.businessObject?.$instanceOf?.('bpmn:FlowNode') && e.type !== 'label');
    elementChoice.append(...flowNodes.map((e) => h('option', { value: e.id }, e.businessObject.name ? `${e.businessObject.name} (${e.id})` : e.id)));
    drawPlan();
  });

  const running = instance.status === 'running';
  const actions = h(
    'div',
    { class: 'actions' },
    running || instance.status === 'suspended'
      ? action('Cancel', async () => {
          const reason = prompt('Why cancel it? (kept in its history)');
          if (reason === null) throw new Error('not cancelled');
          await post(`${path}/cancel`, { reason: reason || null });
        }, { question: 'Cancel this instance? Its work stops and cannot go on.', kind: 'danger', route: 'post /v1/instances/{id}/cancel' })
      : null,
    running ? action('Suspend', () => post(`${path}/suspend`, {}), { route: 'post /v1/instances/{id}/suspend' }) : null,
    instance.status === 'suspended' ? action('Resume', () => post(`${path}/resume`, {}), { route: 'post /v1/instances/{id}/resume' }) : null,
    ['completed', 'cancelled', 'failed'].includes(instance.status)
      ? action('Run again', () => post(`${path}/rerun`, {}), { question: 'Run this instance again from its start (a new run)?', route: 'post /v1/instances/{id}/rerun' })
      : null,
    instance.delete_at
      ? action('Keep for ever', () => post(`${path}/keep`, { until: null, reason: 'kept in the console' }), { route: 'post /v1/instances/{id}/keep' })
      : null,
    ['completed', 'cancelled', 'failed'].includes(instance.status)
      ? action('Delete', async () => {
          const reason = prompt('Why delete it? (written to the server\'s log; its history goes with it)');
          if (reason === null) throw new Error('not deleted');
          await post(`${path}/delete`, { reason: reason || null });
          location.hash = '#/instances';
        }, { question: 'Delete this instance now, with its whole history? This cannot be undone.', kind: 'danger', route: 'post /v1/instances/{id}/delete' })
      : null,
  );

  const variablesEditor = h('textarea', { rows: 8, 'aria-label': 'variables to set (JSON object)' }, JSON.stringify(instance.variables, null, 2));
  drawPlan();
  const children = await get(`/v1/instances${query({ parent_id: instance.id, limit: 20 })}`);

  return h(
    'section',
    { class: 'instance' },
    h('h1', {}, `${instance.workflow} v${instance.version} `, statusBadge(instance.status)),
    h(
      'dl',
      { class: 'facts' },
      fact('Instance', instance.id),
      fact('Tenant', instance.tenant),
      fact('Business key', instance.business_key || '–'),
      fact('Labels', Object.keys(instance.labels).length ? Object.entries(instance.labels).map(([k, v]) => badge(`${k}=${v}`)) : '–'),
      fact('Created', [when(instance.created_at), instance.created_by ? ` by ${instance.created_by}` : '']),
      fact('Updated', [when(instance.updated_at), instance.updated_by ? ` by ${instance.updated_by}` : '']),
      fact('Run', String(instance.run)),
      fact('Parent', instance.parent_id ? h('a', { href: `#/instances/${encodeURIComponent(instance.parent_id)}` }, instance.parent_id) : '–'),
      fact('Root', h('a', { href: `#/instances${query({ root_id: instance.root_id })}` }, 'this family')),
      fact('Called', children.items.length
        ? [children.items.map((c) => [h('a', { href: `#/instances/${encodeURIComponent(c.id)}` }, `${c.workflow} `, statusBadge(c.status)), ' ']),
            children.next ? h('a', { href: `#/instances${query({ parent_id: instance.id })}` }, 'all') : '']
        : '–'),
      instance.delete_at ? fact('Deleted at', when(instance.delete_at)) : null,
      instance.cancel_reason ? fact('Cancelled because', instance.cancel_reason) : null,
      instance.error ? fact('Error', `${instance.error.code} ${instance.error.message || ''} at ${instance.error.element}`) : null,
    ),
    actions,
    h('div', { class: 'diagram-row' }, diagram, detail),
    h('h2', {}, 'Waiting'),
    table(
      [
        ['Element', (w) => w.element_name || w.element],
        ['For', (w) => w.kind],
        ['Since', (w) => when(w.since)],
        ['Due', (w) => (w.timer ? [when(w.due_at), ' ', reschedule(w)] : when(w.due_at))],
        ['Job', (w) => (w.job ? `${w.job.type}, ${w.job.retries} retries left${w.job.worker ? `, with ${w.job.worker}` : ''}` : '')],
        ['Task', (w) => (w.task ? h('a', { href: `#/tasks/${encodeURIComponent(w.task.key)}` }, w.task.assignee || 'unassigned') : '')],
        ['Called', (w) => (w.child ? h('a', { href: `#/instances/${encodeURIComponent(w.child.instance_id)}` }, w.child.instance_id) : '')],
      ],
      instance.waits,
      'Nothing waits.',
    ),
    h('h2', {}, 'Incidents'),
    table(
      [
        ['Element', (i) => i.element_id],
        ['Kind', (i) => i.kind],
        ['Message', (i) => i.message],
        ['Raised', (i) => when(i.created_at)],
        ['State', (i) => (i.state === 'open' ? badge('open', 'incident') : `resolved ${i.resolved_by ? `by ${i.resolved_by}` : ''}`)],
        ['', (i) => (i.state === 'open' ? retryButton(i, instance) : '')],
      ],
      incidents,
      'No incidents.',
    ),
    h('h2', {}, 'Variables'),
    variablesEditor,
    action('Save variables', async () => {
      let variables;
      try {
        variables = JSON.parse(variablesEditor.value);
      } catch (error) {
        throw new Error(`not JSON: ${error.message}`);
      }
      await post(`${path}/variables`, { variables, reason: 'edited in the console' });
    }, { route: 'post /v1/instances/{id}/variables' }),
    mayModify ? [
      h('h2', {}, 'Modify'),
      h('div', { class: 'modify' }, elementChoice, planView,
        action('Apply', async () => {
          if (!plan.activate.size && !plan.terminate.size) throw new Error('plan a change first: pick elements on the diagram');
          const change = [...[...plan.activate].map((e) => `activate ${e}`), ...[...plan.terminate].map((e) => `terminate ${e}`)].join(', ');
          if (!confirm(`Apply: ${change}? Terminated elements lose their work.`)) throw new Error('not applied');
          await post(`${path}/modify`, { activate: [...plan.activate], terminate: [...plan.terminate], reason: 'modified in the console' });
        }, { route: 'post /v1/instances/{id}/modify' })),
    ] : null,
    h('h2', {}, 'History'),
    historyView(history, instance.run),
  );
}

/** The history as an audit timeline: filtered by element, event and who, each run under its own heading (the latest first). */
function historyView(history, currentRun) {
  const box = h('div', { class: 'history' });
  const events = [...new Set(history.map((e) => e.event))].sort();
  const element = h('input', { 'aria-label': 'history element', placeholder: 'element' });
  const event = h('select', { 'aria-label': 'history event' }, h('option', { value: '' }, 'any event'), events.map((e) => h('option', { value: e }, e)));
  const actor = h('input', { 'aria-label': 'history actor', placeholder: 'by' });
  const draw = () => {
    const shown = history.filter((e) =>
      (!element.value || (e.element || '').includes(element.value.trim()) || (e.element_name || '').includes(element.value.trim())) &&
      (!event.value || e.event === event.value) &&
      (!actor.value || (e.actor || '').includes(actor.value.trim())));
    const runs = [...new Set(shown.map((e) => e.run))].sort((a, b) => b - a);
    box.replaceChildren(...(runs.length ? runs : [currentRun]).map((run) =>
      h('div', { class: 'run' },
        runs.length > 1 || run !== 1 ? h('h3', {}, `Run ${run}${run === currentRun ? ' (current)' : ''}`) : null,
        table(
          [
            ['#', (e) => e.seq],
            ['At', (e) => when(e.at)],
            ['Event', (e) => e.event],
            ['Element', (e) => e.element_name || e.element],
            ['Iteration', (e) => e.iteration ?? e.loop_counter ?? ''],
            ['By', (e) => e.actor || ''],
            ['Reason', (e) => e.reason || ''],
          ],
          shown.filter((e) => e.run === run),
          'No entry matches.',
        ))));
  };
  for (const input of [element, event, actor]) input.addEventListener('input', draw);
  draw();
  return h('div', {}, h('div', { class: 'filters' }, element, event, actor), box);
}

/** Moves a waiting timer to a new due time (the reader's local time). */
function reschedule(wait) {
  const input = h('input', { type: 'datetime-local', 'aria-label': `new due time of ${wait.element}` });
  return h('span', { class: 'reschedule' }, input,
    action('Reschedule', async () => {
      if (!input.value) throw new Error('choose the new due time first');
      await post(`/v1/timers/${encodeURIComponent(wait.timer)}/reschedule`, { due_at: new Date(input.value).toISOString(), reason: 'rescheduled in the console' });
    }, { route: 'post /v1/timers/{key}/reschedule' }));
}

function fact(term, value) {
  return h('div', {}, h('dt', {}, term), h('dd', {}, value));
}

/** Retries an incident of `instance`: its job's retries set back to one (when a job failed), then the incident resolved. */
async function retry(incident, instance, reason) {
  const job = instance.waits.find((w) => w.element === incident.element_id && w.job)?.job;
  if (job) await post(`/v1/jobs/${encodeURIComponent(job.key)}/retries`, { retries: Math.max(1, job.retries), reason });
  await post(`/v1/incidents/${encodeURIComponent(incident.key)}/resolve`, { reason });
}

function retryButton(incident, instance) {
  return action('Retry', () => retry(incident, instance, 'retried in the console'), { route: 'post /v1/incidents/{key}/resolve' });
}

// ----- workflows -----

/** What the last deployment said, shown once on the workflows page drawn after it. */
let deployed = null;

async function workflowsPage() {
  const [list, counts, forms] = await Promise.all([all('/v1/workflows'), get('/v1/instances/counts'), all('/v1/forms')]);
  // Instances per version and status, and with open incidents, from the counts the API keeps.
  const tally = (w, pick) => counts.items.filter((c) => c.tenant === w.tenant && c.workflow === w.workflow && c.version === w.version && pick(c)).reduce((n, c) => n + c.count, 0);
  const said = deployed;
  deployed = null;
  const files = h('input', { type: 'file', accept: '.bpmn,.xml,.form', multiple: true, 'aria-label': 'BPMN files' });
  const tenant = h('input', { name: 'tenant', placeholder: 'default', 'aria-label': 'tenant' });
  const outcome = said || h('div', { role: 'status' });
  const deploy = async (event) => {
    event.preventDefault();
    const resources = await Promise.all([...files.files].map(async (file) => ({ name: file.name, xml: await file.text() })));
    if (!resources.length) return outcome.replaceChildren(problem(new Error('choose BPMN or form files first')));
    try {
      const answer = await post('/v1/workflows', { resources, tenant: tenant.value || null });
      // Shown above the list, which is drawn again with the new versions.
      deployed = h(
        'div',
        { role: 'status' },
        h('p', {}, 'Deployed: ', [
          ...answer.workflows.map((w) => `${w.workflow} v${w.version}${w.created ? '' : ' (unchanged)'}`),
          ...answer.forms.map((f) => `form ${f.form_id} v${f.version}${f.created ? '' : ' (unchanged)'}`),
        ].join(', ')),
        answer.diagnostics.length ? diagnosticsView(answer.diagnostics, resources) : '',
      );
      await show();
    } catch (error) {
      outcome.replaceChildren(problem(error));
      if (error.diagnostics?.length) outcome.append(diagnosticsView(error.diagnostics, resources));
    }
  };
  return h(
    'section',
    {},
    h('h1', {}, 'Workflows'),
    may('post /v1/workflows') && h('form', { class: 'deploy', onsubmit: deploy }, h('label', {}, 'Deploy ', files), h('label', {}, 'Tenant ', tenant), h('button', { type: 'submit' }, 'Deploy')),
    outcome,
    table(
      [
        ['Workflow', (w) => h('a', { href: `#/workflows/${encodeURIComponent(w.tenant)}/${encodeURIComponent(w.workflow)}/${w.version}` }, w.workflow)],
        ['Version', (w) => w.version],
        ['Name', (w) => w.name || ''],
        ['Tenant', (w) => w.tenant],
        ['Version tag', (w) => w.version_tag || ''],
        ['Deployed', (w) => when(w.deployed_at)],
        ...STATUSES.map((status) => [status, (w) => {
          const n = tally(w, (c) => c.status === status);
          return n ? h('a', { href: `#/instances${query({ workflow: w.workflow, version: w.version, tenant: w.tenant, status })}` }, n) : h('span', { class: 'muted' }, '0');
        }]),
        ['Incidents', (w) => {
          const n = tally(w, (c) => c.with_incidents);
          return n ? h('a', { href: `#/instances${query({ workflow: w.workflow, version: w.version, tenant: w.tenant, has_incidents: 'true' })}` }, badge(String(n), 'incident')) : '';
        }],
      ],
      list,
      'Nothing is deployed yet.',
    ),
    h('h2', {}, 'Forms'),
    table(
      [
        ['Form', (f) => f.form_id],
        ['Version', (f) => f.version],
        ['Version tag', (f) => f.version_tag || ''],
        ['Tenant', (f) => f.tenant],
        ['File', (f) => f.resource],
        ['Deployed', (f) => when(f.deployed_at)],
      ],
      forms,
      'No forms are deployed. User tasks link them by id (zeebe:formDefinition formId); deploy the .form files here.',
    ),
  );
}

/** Diagnostics of a deployment, each on the diagram of its file with its element marked. */
function diagnosticsView(diagnostics, resources) {
  const box = h('div', { class: 'diagnostics' });
  box.append(
    table(
      [
        ['File', (d) => d.resource],
        ['Severity', (d) => badge(d.severity, d.severity === 'error' ? 'incident' : '')],
        ['Code', (d) => d.code],
        ['Element', (d) => d.element || ''],
        ['Line', (d) => (d.line ? `${d.line}:${d.column}` : '')],
        ['Message', (d) => d.message],
      ],
      diagnostics,
    ),
  );
  for (const resource of resources) {
    const marked = Object.fromEntries(diagnostics.filter((d) => d.resource === resource.name && d.element).map((d) => [d.element, `${d.code}: ${d.message}`]));
    if (!Object.keys(marked).length) continue;
    const canvas = h('div', { class: 'diagram' });
    box.append(h('h3', {}, resource.name), h('div', { class: 'diagram-box' }, canvas));
    whenShown(canvas, () => drawDiagram(canvas, resource.xml, { incidents: marked }));
  }
  return box;
}

async function workflowPage(tenant, key, version) {
  const workflow = await get(`/v1/workflows/${encodeURIComponent(key)}/versions/${encodeURIComponent(version)}${query({ tenant })}`);
  const HEAT = 200;
  const [counts, running] = await Promise.all([
    get(`/v1/instances/counts${query({ workflow: key, version: workflow.version, tenant })}`),
    get(`/v1/instances${query({ workflow: key, version: workflow.version, tenant, status: 'running', limit: HEAT })}`),
  ]);
  // Where this version's running instances wait (the first HEAT of them), and their open incidents: a heat map.
  const overlays = { waiting: {}, incidents: {} };
  const details = await Promise.all(running.items.map((i) => get(`/v1/instances/${encodeURIComponent(i.id)}`)));
  for (const instance of details) for (const wait of instance.waits) overlays.waiting[wait.element] = (overlays.waiting[wait.element] || 0) + 1;
  const shown = new Set(running.items.map((r) => r.id));
  const incidents = (await all(`/v1/incidents${query({ workflow: key, tenant })}`)).filter((i) => shown.has(i.instance_id));
  for (const incident of incidents) overlays.incidents[incident.element_id] = `${(overlays.incidents[incident.element_id] ? 'several incidents' : incident.message)}`;
  const canvas = h('div', { class: 'diagram' });
  const box = h('div', { class: 'diagram-box' }, canvas);
  whenShown(canvas, async () => {
    const viewer = await drawDiagram(canvas, workflow.xml, overlays);
    if (viewer) box.prepend(zoomControls(viewer));
  });
  const variables = h('textarea', { rows: 5, 'aria-label': 'variables (JSON object)' }, '{}');
  const businessKey = h('input', { 'aria-label': 'business key', placeholder: 'business key' });
  const byStatus = STATUSES.map((s) => [s, counts.by_status[s]]);
  return h(
    'section',
    {},
    h('h1', {}, `${key} v${workflow.version}`, workflow.name ? ` — ${workflow.name}` : ''),
    h('p', { class: 'counts' }, byStatus.map(([s, n]) => h('a', { href: `#/instances${query({ workflow: key, version: workflow.version, tenant, status: s })}` }, statusBadge(s), ` ${n} `)),
      `instances with incidents: ${counts.with_incidents}`,
      running.next ? h('span', { class: 'muted' }, ` (the map shows where the first ${HEAT} running instances wait)`) : ''),
    box,
    h('h2', {}, 'Start an instance'),
    h('div', { class: 'start' }, variables, businessKey,
      action('Start', async () => {
        let parsed;
        try {
          parsed = JSON.parse(variables.value || '{}');
        } catch (error) {
          throw new Error(`variables are not JSON: ${error.message}`);
        }
        const started = await post('/v1/instances', { workflow: key, version: workflow.version, variables: parsed, business_key: businessKey.value || null, tenant });
        location.hash = `#/instances/${encodeURIComponent(started.id)}`;
      }, { route: 'post /v1/instances' })),
  );
}

// ----- tasks -----

const USER_KEY = 'baton-user';

/** The name the user acts under: the token's holder, or the name they typed on the tasks page. */
function userName() {
  return me.authenticated ? me.name : localStorage.getItem(USER_KEY) || '';
}

const taskLink = (t) => h('a', { href: `#/tasks/${encodeURIComponent(t.key)}` }, t.element_id);

function claimOrGiveBack(t) {
  if (t.state === 'completed') return '';
  return t.assignee
    ? action('Give back', () => post(`/v1/tasks/${encodeURIComponent(t.key)}/unclaim`, {}), { route: 'post /v1/tasks/{key}/unclaim' })
    : action('Claim', () => post(`/v1/tasks/${encodeURIComponent(t.key)}/claim`, { assignee: userName() || 'console' }), { route: 'post /v1/tasks/{key}/claim' });
}

function assignTo(t) {
  if (t.state === 'completed' || !may('post /v1/tasks/{key}/assign')) return '';
  const who = h('input', { 'aria-label': `assign ${t.key} to`, placeholder: 'assign to', size: 10 });
  return h('span', {}, who, action('Assign', () => post(`/v1/tasks/${encodeURIComponent(t.key)}/assign`, { assignee: who.value.trim() })));
}

/**
 * Change a task's due date, follow-up date, priority or candidates; only what
 * was edited is sent (an emptied field clears it). The task's updating
 * listeners, if it has any, see the change first.
 */
function changeTask(t) {
  if (t.state === 'completed' || !may('post /v1/tasks/{key}/update')) return '';
  const field = (label, value, attributes = {}) => h('label', {}, `${label} `, h('input', { value: value ?? '', size: 14, ...attributes }));
  const fields = {
    due: field('Due', t.due, { placeholder: '2026-01-31T17:00:00Z' }),
    follow_up: field('Follow up', t.follow_up),
    priority: field('Priority', t.priority, { type: 'number', size: 4 }),
    candidate_groups: field('Candidate groups', t.candidate_groups.join(', ')),
    candidate_users: field('Candidate users', t.candidate_users.join(', ')),
  };
  const read = (name) => fields[name].querySelector('input').value.trim();
  const list = (text) => text.split(',').map((s) => s.trim()).filter(Boolean);
  const change = action('Save changes', async () => {
    const body = {};
    if (read('due') !== (t.due ?? '')) body.due = read('due');
    if (read('follow_up') !== (t.follow_up ?? '')) body.follow_up = read('follow_up');
    if (read('priority') !== String(t.priority ?? '') && read('priority') !== '') body.priority = Number(read('priority'));
    if (read('candidate_groups') !== t.candidate_groups.join(', ')) body.candidate_groups = list(read('candidate_groups'));
    if (read('candidate_users') !== t.candidate_users.join(', ')) body.candidate_users = list(read('candidate_users'));
    await post(`/v1/tasks/${encodeURIComponent(t.key)}/update`, body);
  });
  return h('form', { class: 'inline', onsubmit: (e) => e.preventDefault() }, ...Object.values(fields), change);
}

/** The open tasks of the user's groups: one query per group, each task once. */
async function groupTasks(groups) {
  const seen = new Map();
  for (const group of groups) {
    for (const task of await all(`/v1/tasks${query({ candidate_group: group })}`)) seen.set(task.key, task);
  }
  return [...seen.values()].sort((a, b) => a.created_at.localeCompare(b.created_at));
}

async function tasksPage(params) {
  const view = params.get('view') || 'open';
  const user = userName();
  const groups = me.authenticated ? me.groups || [] : (params.get('groups') || '').split(',').map((g) => g.trim()).filter(Boolean);
  let tasks;
  switch (view) {
    case 'mine':
      tasks = user ? await all(`/v1/tasks${query({ assignee: user })}`) : [];
      break;
    case 'groups':
      tasks = await groupTasks(groups);
      break;
    case 'unassigned':
      tasks = (await all('/v1/tasks')).filter((t) => !t.assignee);
      break;
    case 'completed':
      tasks = await all(`/v1/tasks${query({ state: 'completed' })}`);
      break;
    default:
      tasks = await all('/v1/tasks');
  }
  const name = h('input', { value: user, 'aria-label': 'your name', placeholder: 'your name', disabled: me.authenticated, onchange: (e) => localStorage.setItem(USER_KEY, e.target.value.trim()) });
  const tabs = [
    ['All open', 'open'],
    ['Mine', 'mine'],
    ['My groups', 'groups'],
    ['Unassigned', 'unassigned'],
    ['Completed', 'completed'],
  ];
  const groupInput = me.authenticated
    ? h('span', { class: 'muted' }, groups.length ? `groups: ${groups.join(', ')}` : 'no groups')
    : h('input', {
        value: groups.join(', '),
        'aria-label': 'your groups (comma-separated)',
        placeholder: 'your groups',
        onchange: (e) => { location.hash = `#/tasks${query({ view: 'groups', groups: e.target.value })}`; },
      });
  const done = view === 'completed';
  const columns = [
    ['Task', taskLink],
    ['Instance', (t) => h('a', { href: `#/instances/${encodeURIComponent(t.instance_id)}` }, t.instance_id)],
    ['Workflow', (t) => t.workflow],
    ['Assignee', (t) => t.assignee || h('span', { class: 'muted' }, 'unassigned')],
    ['Groups', (t) => t.candidate_groups.join(', ')],
    ['Due', (t) => (t.due ? when(t.due) : '')],
    ['Follow up', (t) => (t.follow_up ? when(t.follow_up) : '')],
    ['Priority', (t) => (t.priority ?? '')],
  ];
  if (done) columns.push(['Completed by', (t) => t.completed_by || ''], ['Completed', (t) => when(t.completed_at)]);
  else columns.push(['', claimOrGiveBack], ['', assignTo], ['', (t) => h('a', { class: 'button', href: `#/tasks/${encodeURIComponent(t.key)}` }, 'Work on it')]);
  return h(
    'section',
    {},
    h('h1', {}, 'Tasks'),
    h('p', {}, h('label', {}, 'You are ', name), ' ', groupInput),
    h('nav', { class: 'tabs', 'aria-label': 'task lists' }, tabs.map(([label, key]) =>
      h('a', { class: 'button', href: `#/tasks${query({ view: key, groups: me.authenticated ? '' : params.get('groups') })}`, 'aria-current': key === view ? 'page' : null }, label))),
    table(columns, tasks, done ? 'No completed tasks.' : 'No tasks here.'),
  );
}

/** One task: what it is, who holds it, and its form to complete it with. */
async function taskPage(key) {
  const task = await get(`/v1/tasks/${encodeURIComponent(key)}`);
  const facts = h('dl', { class: 'facts' },
    fact('Workflow', task.workflow),
    fact('Instance', h('a', { href: `#/instances/${encodeURIComponent(task.instance_id)}` }, task.instance_id)),
    fact('Assignee', task.assignee || 'unassigned'),
    fact('Candidate groups', task.candidate_groups.join(', ') || '–'),
    fact('Candidate users', task.candidate_users.join(', ') || '–'),
    fact('Due', when(task.due)),
    fact('Follow up', when(task.follow_up)),
    fact('Priority', task.priority ?? '–'),
    fact('Properties', Object.entries(task.properties || {}).map(([name, value]) => `${name}: ${value}`).join(', ') || '–'),
    fact('Created', when(task.created_at)));
  const header = [h('h1', {}, `Task ${task.element_id} `, badge(task.state, task.state === 'completed' ? 'status-completed' : 'status-running')), facts];
  if (task.state === 'completed') {
    return h('section', {}, header, h('p', {}, `Completed by ${task.completed_by || 'someone'} `, when(task.completed_at), '.'));
  }
  let formAnswer = null;
  let formProblem = null;
  try {
    formAnswer = await get(`/v1/tasks/${encodeURIComponent(key)}/form`);
  } catch (error) {
    formProblem = error;
  }
  const form = await taskForm(formAnswer);
  const complete = action('Complete', async () => {
    const variables = form.read();
    await post(`/v1/tasks/${encodeURIComponent(key)}/complete`, { variables });
    location.hash = '#/tasks';
  }, { route: 'post /v1/tasks/{key}/complete', kind: 'primary' });
  return h(
    'section',
    {},
    header,
    h('p', {}, claimOrGiveBack(task), ' ', assignTo(task)),
    changeTask(task),
    h('h2', {}, 'Form'),
    formProblem ? problem(formProblem) : h('p', { class: 'muted' }, describeSource(formAnswer)),
    form.element,
    complete || h('p', { class: 'muted' }, 'You may not complete tasks.'),
  );
}

// ----- incidents -----

async function incidentsPage() {
  const incidents = await all('/v1/incidents');
  const groups = new Map();
  for (const incident of incidents) {
    const key = `${incident.tenant}\u0000${incident.workflow}\u0000${incident.element_id}\u0000${incident.message}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(incident);
  }
  const retryAll = (list) =>
    action(`Retry ${list.length}`, async () => {
      for (const incident of list) {
        const instance = await get(`/v1/instances/${encodeURIComponent(incident.instance_id)}`);
        await retry(incident, instance, 'retried in bulk in the console');
      }
    }, { question: `Retry these incidents?`, route: 'post /v1/incidents/{key}/resolve' });
  return h(
    'section',
    {},
    h('h1', {}, 'Incidents'),
    table(
      [
        ['Workflow', ([first]) => first.workflow],
        ['Element', ([first]) => first.element_id],
        ['Message', ([first]) => first.message],
        ['Count', (list) => list.length],
        ['Instances', (list) => list.slice(0, 5).map((i) => [h('a', { href: `#/instances/${encodeURIComponent(i.instance_id)}` }, i.instance_id), ' '])],
        ['', retryAll],
      ],
      [...groups.values()],
      'No open incidents.',
    ),
  );
}

window.addEventListener('hashchange', () => {
  notice.replaceChildren();
  show();
});
// Back from the issuer's sign-in page: trade its code for a token first.
finishSignIn()
  .then((issued) => issued && setToken(issued))
  .catch((error) => { signInProblem = error; })
  .finally(show);
