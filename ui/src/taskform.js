// The form a user task is completed with, as GET /v1/tasks/{key}/form gives
// it: a Camunda Form (embedded, deployed or generated from the task's inputs)
// rendered with form-js, or a JSON editor when the task has no form.

import { h } from './dom.js';

/** The variables the form starts from; a viewer whose variables are hidden gets none. */
function initial(answer) {
  return answer && typeof answer.variables === 'object' && answer.variables !== null ? answer.variables : {};
}

/**
 * Draws the form into a new element; `read()` gives the variables to complete
 * the task with, or throws with what is wrong. form-js is loaded only here, so
 * the other pages stay small.
 */
export async function taskForm(answer) {
  if (answer && answer.schema) {
    const [{ Form }] = await Promise.all([
      import('@bpmn-io/form-js-viewer'),
      import('@bpmn-io/form-js-viewer/dist/assets/form-js.css'),
    ]);
    const container = h('div', { class: 'task-form' });
    const form = new Form({ container });
    await form.importSchema(answer.schema, initial(answer));
    // Generated forms show values that are not text, numbers or booleans as JSON.
    const asJson = new Set(
      (answer.schema.components || []).filter((c) => c.properties && c.properties.json === 'true').map((c) => c.key),
    );
    return {
      element: container,
      read() {
        const { data, errors } = form.submit();
        const wrong = Object.entries(errors || {}).filter(([, list]) => list && list.length);
        if (wrong.length) throw new Error(`the form has errors: ${wrong.map(([field, list]) => `${field}: ${list.join(', ')}`).join('; ')}`);
        const variables = { ...data };
        for (const key of asJson) {
          if (typeof variables[key] !== 'string') continue;
          try {
            variables[key] = JSON.parse(variables[key]);
          } catch (error) {
            throw new Error(`${key} is not JSON: ${error.message}`);
          }
        }
        return variables;
      },
    };
  }
  const editor = h('textarea', { rows: 6, class: 'json-editor', 'aria-label': 'variables to complete the task with (JSON object)' }, '{}');
  return {
    element: editor,
    read() {
      let variables;
      try {
        variables = JSON.parse(editor.value || '{}');
      } catch (error) {
        throw new Error(`not JSON: ${error.message}`);
      }
      if (typeof variables !== 'object' || variables === null || Array.isArray(variables)) throw new Error('the variables must be a JSON object');
      return variables;
    },
  };
}

/** Where the task's form comes from, in words for the page. */
export function describeSource(answer) {
  switch (answer && answer.source) {
    case 'embedded':
      return `the form embedded in the process (${answer.form_id})`;
    case 'deployed':
      return `the deployed form ${answer.form_id}, version ${answer.version}`;
    case 'generated':
      return 'a form made from the task\u2019s input variables';
    case 'external':
      return `an external form (${answer.reference}); complete it here with JSON`;
    default:
      return 'no form: complete it with variables as JSON';
  }
}
