//! Ad-hoc subprocesses: what the job that drives one sees, and what an activation's variables reach.

use engine::{ActivateElement, JobResult, Input};
use serde_json::json;

use crate::support::{vars, workflow, Driver};

const AGENT: &str = r#"<startEvent id="start"/>
    <adHocSubProcess id="agent">
      <extensionElements><zeebe:taskDefinition type="ai-agent"/></extensionElements>
      <serviceTask id="search" name="Search orders">
        <documentation>Finds an order by its number.</documentation>
        <extensionElements>
          <zeebe:taskDefinition type="search"/>
          <zeebe:properties><zeebe:property name="cost" value="low"/></zeebe:properties>
          <zeebe:ioMapping>
            <zeebe:input source="=fromAi(toolCall.orderNumber, &quot;the order's number&quot;, &quot;string&quot;)" target="orderNumber"/>
            <zeebe:input source="=fromAi(value: toolCall.limit, description: &quot;how many&quot;, type: &quot;number&quot;, schema: {minimum: 1})" target="limit"/>
          </zeebe:ioMapping>
        </extensionElements>
      </serviceTask>
      <userTask id="ask" name="Ask a person"/>
      <scriptTask id="after"><extensionElements><zeebe:script expression="=1" resultVariable="x"/></extensionElements></scriptTask>
      <sequenceFlow id="inner" sourceRef="ask" targetRef="after"/>
    </adHocSubProcess>
    <endEvent id="end"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="agent"/><sequenceFlow id="f2" sourceRef="agent" targetRef="end"/>"#;

#[test]
fn the_job_of_an_ad_hoc_subprocess_sees_the_elements_it_can_activate_with_their_ai_parameters() {
    let wf = workflow(AGENT);
    let d = Driver::start(&wf, json!({}));
    let job = d.state.jobs.values().find(|j| j.element_id == "agent").expect("the agent's job");
    let seen = d.state.visible_variables(job.element_instance);
    assert_eq!(
        seen["adHocSubProcessElements"],
        json!([
            {
                "elementId": "search", "elementName": "Search orders", "documentation": "Finds an order by its number.",
                "properties": {"cost": "low"},
                "parameters": [
                    {"name": "orderNumber", "description": "the order's number", "type": "string", "schema": null, "options": null},
                    {"name": "limit", "description": "how many", "type": "number", "schema": {"minimum": 1}, "options": null}
                ]
            },
            {"elementId": "ask", "elementName": "Ask a person", "documentation": null, "properties": {}, "parameters": []}
        ]),
        "'after' has an incoming flow, so it is not activatable on its own"
    );
}

#[test]
fn an_activation_s_variables_reach_its_element_s_inputs_and_stay_in_its_inner_instance() {
    let wf = workflow(AGENT);
    let mut d = Driver::start(&wf, json!({}));
    let job = d.job("agent");
    let activate = ActivateElement { element_id: "search".into(), variables: vars(json!({"toolCall": {"orderNumber": "A-7", "limit": 3}})) };
    let result = JobResult { activate_elements: vec![activate], ..JobResult::default() };
    d.input("agent decides", Input::CompleteJob { job, variables: vars(json!({})), result: Some(result) });
    let search = d.state.element_instances.values().find(|ei| ei.element_id == "search").expect("search runs");
    assert_eq!((search.variables["orderNumber"].clone(), search.variables["limit"].clone()), (json!("A-7"), json!(3)));
    let inner = &d.state.element_instances[&search.parent.unwrap()];
    assert_eq!((inner.element_id.as_str(), inner.variables["toolCall"]["orderNumber"].clone()), ("agent", json!("A-7")));
    d.complete("search", json!({"found": true}));
    assert!(!d.state.variables.contains_key("found"), "what the flow wrote stayed in its inner instance, which ended");
    assert_eq!(d.state.jobs.values().filter(|j| j.element_id == "agent").count(), 1, "the agent is asked again");
}
