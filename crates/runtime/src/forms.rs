//! Forms: the Camunda Form files deployed beside BPMN, and the form a user
//! task is completed with (embedded in its process, deployed and picked by
//! its binding, or generated from the task's input variables).

use bpmn::{Binding, Diagnostic, FormLink, Kind, TaskKind, Workflow};
use engine::{InstanceState, Variables};
use serde_json::{json, Value};
use store::{FormRow, ReadTxn};

use crate::Error;

/// Whether a deployed file is a form rather than BPMN: Camunda Modeler saves forms as `*.form`.
pub fn is_form_file(name: &str) -> bool {
    name.to_ascii_lowercase().ends_with(".form")
}

/// A form file's id and version tag, once it is known to be a Camunda Form schema:
/// a JSON object with a non-empty string `id` and a `components` array.
pub fn read_form(text: &str) -> Result<(String, Option<String>), Diagnostic> {
    let invalid = |line: usize, column: usize, message: String| {
        Diagnostic::error("form-invalid", None, (line as u32, column as u32), message)
    };
    let value: Value = serde_json::from_str(text)
        .map_err(|error| invalid(error.line(), error.column(), format!("the form is not JSON: {error}")))?;
    let Value::Object(schema) = value else {
        return Err(invalid(1, 1, "the form is not a JSON object (a Camunda Form's schema)".into()));
    };
    let id = match schema.get("id") {
        Some(Value::String(id)) if !id.trim().is_empty() => id.clone(),
        _ => return Err(invalid(1, 1, "the form has no \"id\": user tasks link a deployed form by it (zeebe:formDefinition formId)".into())),
    };
    if !matches!(schema.get("components"), Some(Value::Array(_))) {
        return Err(invalid(1, 1, format!("the form '{id}' has no \"components\" list")));
    }
    let version_tag = schema.get("versionTag").and_then(Value::as_str).map(str::to_string);
    Ok((id, version_tag))
}

/// Where a task's form comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormSource {
    /// A `zeebe:userTaskForm` in the process.
    Embedded,
    /// A form file deployed beside the BPMN.
    Deployed,
    /// Made from the task's input variables: the task links no form.
    Generated,
    /// The task names a form that the application showing it knows (`externalReference`, a custom form key).
    External,
    /// No form and no input variables: the task is completed with variables as JSON.
    None,
}

impl FormSource {
    pub fn as_str(self) -> &'static str {
        match self {
            FormSource::Embedded => "embedded",
            FormSource::Deployed => "deployed",
            FormSource::Generated => "generated",
            FormSource::External => "external",
            FormSource::None => "none",
        }
    }
}

/// The form to show for a user task, with the variables to fill it.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskForm {
    pub source: FormSource,
    /// The form's id: the embedded form's or the deployed one's.
    pub form_id: Option<String>,
    /// The deployed form's version.
    pub version: Option<u32>,
    /// The reference an external form is known by.
    pub reference: Option<String>,
    /// The Camunda Form schema (form-js renders it); `None` for external forms and `None`.
    pub schema: Option<Value>,
    /// Every variable the task sees (its own inputs over its scopes'), to fill the form.
    pub variables: Variables,
}

/// The form of the user task `local_key` of `state`, an instance of `workflow`
/// (deployed in `deployment` to `tenant`).
pub fn task_form(
    tx: &mut dyn ReadTxn,
    workflow: &Workflow,
    deployment: u64,
    tenant: &str,
    state: &InstanceState,
    local_key: u64,
) -> Result<TaskForm, Error> {
    let task = state.user_tasks.get(&local_key).ok_or_else(|| Error::NotFound {
        what: "open user task",
        id: format!("{}.{local_key}", state.id),
    })?;
    let variables = state.visible_variables(task.element_instance);
    let inputs = state.element_instances.get(&task.element_instance).map(|ei| &ei.variables);
    let link = match workflow.element(&task.element_id).map(|e| &e.kind) {
        Some(Kind::Task(TaskKind::User(definition))) => definition.form.clone(),
        _ => None,
    };
    let form = |source, form_id: Option<String>, version, schema: Option<Value>| TaskForm {
        source,
        form_id,
        version,
        reference: None,
        schema,
        variables: variables.clone(),
    };
    Ok(match link {
        Some(FormLink::Embedded(id)) => {
            let schema = workflow.forms.get(&id).and_then(|text| serde_json::from_str(text).ok());
            form(FormSource::Embedded, Some(id), None, schema)
        }
        Some(FormLink::Deployed { form_id, binding }) => {
            let versions = tx.forms(&Some(vec![tenant.to_string()]), Some(&form_id))?;
            let chosen = pick(versions, &binding, deployment).ok_or_else(|| Error::NotFound {
                what: "form",
                id: format!("{form_id} ({}) in tenant {tenant}", describe(&binding)),
            })?;
            let schema = serde_json::from_str(&chosen.schema).ok();
            form(FormSource::Deployed, Some(form_id), Some(chosen.version), schema)
        }
        Some(FormLink::External(reference)) => TaskForm { reference: Some(reference), ..form(FormSource::External, None, None, None) },
        None => match inputs.filter(|inputs| !inputs.is_empty()) {
            Some(inputs) => form(FormSource::Generated, None, None, Some(generated(inputs))),
            None => form(FormSource::None, None, None, None),
        },
    })
}

/// The version of a form that a binding picks (see [`Binding::pick`]).
fn pick(versions: Vec<FormRow>, binding: &Binding, deployment: u64) -> Option<FormRow> {
    binding.pick(&versions, deployment, |f| f.deployment, |f| f.version_tag.as_deref()).cloned()
}

fn describe(binding: &Binding) -> String {
    match binding {
        Binding::Latest => "latest version".into(),
        Binding::Deployment => "the version deployed with the workflow".into(),
        Binding::VersionTag(tag) => format!("version tag {tag}"),
    }
}

/// A Camunda Form schema with one field per input variable: a checkbox for a
/// boolean, a number field for a number, a text field for text, and a JSON text
/// area for anything else (marked so the console parses it back).
pub fn generated(inputs: &Variables) -> Value {
    let components: Vec<Value> = inputs
        .iter()
        .map(|(name, value)| match value {
            Value::Bool(_) => json!({ "type": "checkbox", "key": name, "label": name, "id": format!("Field_{name}") }),
            Value::Number(_) => json!({ "type": "number", "key": name, "label": name, "id": format!("Field_{name}") }),
            Value::String(_) => json!({ "type": "textfield", "key": name, "label": name, "id": format!("Field_{name}") }),
            _ => json!({
                "type": "textarea",
                "key": name,
                "label": format!("{name} (JSON)"),
                "id": format!("Field_{name}"),
                "properties": { "json": "true" },
            }),
        })
        .collect();
    json!({ "type": "default", "id": "generated", "components": components, "schemaVersion": 16 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_file_needs_an_id_and_components() {
        assert_eq!(read_form(r#"{"id":"order","components":[],"versionTag":"v2"}"#).unwrap(), ("order".to_string(), Some("v2".to_string())));
        let refused = |text: &str| read_form(text).unwrap_err().message;
        assert!(refused("{\"id\": ").contains("not JSON"), "{}", refused("{\"id\": "));
        assert!(refused("[1]").contains("not a JSON object"));
        assert!(refused(r#"{"components":[]}"#).contains("no \"id\""));
        assert!(refused(r#"{"id":"  ","components":[]}"#).contains("no \"id\""));
        assert!(refused(r#"{"id":"x"}"#).contains("no \"components\""));
        assert_eq!(read_form("{\n \"id\": 3,").unwrap_err().line, 2);
    }

    #[test]
    fn a_generated_form_has_a_field_per_input_of_its_type() {
        let inputs: Variables = serde_json::from_value(json!({"ok": true, "amount": 3, "name": "x", "items": [1]})).unwrap();
        let schema = generated(&inputs);
        let fields: Vec<(&str, &str)> = schema["components"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["key"].as_str().unwrap(), c["type"].as_str().unwrap()))
            .collect();
        // In the order the variables are kept.
        assert_eq!(fields, [("ok", "checkbox"), ("amount", "number"), ("name", "textfield"), ("items", "textarea")]);
        assert_eq!(schema["components"][3]["properties"]["json"], "true");
    }
}
