//! Decisions read from DMN and evaluated.

use std::collections::BTreeMap;

use dmn::Value;

fn inputs(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

fn number(n: i64) -> Value {
    Value::Number(n.into())
}

fn text(s: &str) -> Value {
    Value::String(s.into())
}

/// A discount table (every hit policy is tried by rewriting it), a decision
/// that requires it, and a business knowledge model it calls.
fn model(hit_policy: &str) -> String {
    // A multiple-hit table's result is a list: its decision is not typed as a number.
    let typed = if hit_policy.starts_with("RULE") || hit_policy.starts_with("OUTPUT") || hit_policy == "COLLECT" { "" } else { r#" typeRef="number""# };
    let (hit_policy, aggregation) = hit_policy.split_once(' ').filter(|(h, _)| *h == "COLLECT").map_or((hit_policy, ""), |(h, a)| (h, a));
    let aggregation = if aggregation.is_empty() { String::new() } else { format!(r#" aggregation="{aggregation}""#) };
    format!(
        r##"<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="d" name="Discounts" namespace="http://example.org">
  <inputData id="i_customer" name="Customer Type"><variable name="Customer Type" typeRef="string"/></inputData>
  <inputData id="i_amount" name="Order Amount"><variable name="Order Amount" typeRef="number"/></inputData>
  <businessKnowledgeModel id="b_net" name="Net Price">
    <encapsulatedLogic>
      <formalParameter name="amount"/><formalParameter name="rate"/>
      <literalExpression><text>amount * (1 - rate)</text></literalExpression>
    </encapsulatedLogic>
  </businessKnowledgeModel>
  <decision id="d_discount" name="Discount">
    <variable name="Discount"{typed}/>
    <informationRequirement><requiredInput href="#i_customer"/></informationRequirement>
    <informationRequirement><requiredInput href="#i_amount"/></informationRequirement>
    <decisionTable hitPolicy="{hit_policy}"{aggregation}>
      <input label="Customer Type"><inputExpression typeRef="string"><text>Customer Type</text></inputExpression></input>
      <input label="Order Amount"><inputExpression typeRef="number"><text>Order Amount</text></inputExpression></input>
      <output name="Discount"><outputValues><text>0.15, 0.1, 0.05</text></outputValues></output>
      <rule><inputEntry><text>"Business"</text></inputEntry><inputEntry><text>&lt; 1000</text></inputEntry><outputEntry><text>0.1</text></outputEntry></rule>
      <rule><inputEntry><text>"Business"</text></inputEntry><inputEntry><text>&gt;= 1000</text></inputEntry><outputEntry><text>0.15</text></outputEntry></rule>
      <rule><inputEntry><text>"Private", "Business"</text></inputEntry><inputEntry><text>-</text></inputEntry><outputEntry><text>0.05</text></outputEntry></rule>
    </decisionTable>
  </decision>
  <decision id="d_price" name="Price">
    <variable name="Price" typeRef="number"/>
    <informationRequirement><requiredDecision href="#d_discount"/></informationRequirement>
    <knowledgeRequirement><requiredKnowledge href="#b_net"/></knowledgeRequirement>
    <literalExpression><text>Net Price(Order Amount, Discount)</text></literalExpression>
  </decision>
</definitions>"##
    )
}

fn evaluate(hit_policy: &str, decision: &str, customer: &str, amount: i64) -> Result<Value, String> {
    let definitions = dmn::import(&model(hit_policy)).unwrap();
    definitions
        .evaluate(decision, &inputs(&[("Customer Type", text(customer)), ("Order Amount", number(amount))]))
        .map(|e| e.value)
}

#[test]
fn each_hit_policy_picks_as_dmn_says() {
    let decimal = |s: &str| Value::Number(s.parse().unwrap());
    // Two rules match a business order of 2 000: 0.15 (rule 2) and 0.05 (rule 3).
    assert!(evaluate("UNIQUE", "Discount", "Business", 2000).unwrap_err().contains("rules 2, 3 matched"));
    assert_eq!(evaluate("UNIQUE", "Discount", "Private", 10).unwrap(), decimal("0.05"));
    assert_eq!(evaluate("FIRST", "Discount", "Business", 2000).unwrap(), decimal("0.15"));
    assert!(evaluate("ANY", "Discount", "Business", 2000).unwrap_err().contains("different outputs"));
    // PRIORITY: the output value listed first wins.
    assert_eq!(evaluate("PRIORITY", "Discount", "Business", 10).unwrap(), decimal("0.1"));
    let list = |items: &[&str]| Value::List(items.iter().map(|i| decimal(i)).collect());
    assert_eq!(evaluate("RULE ORDER", "Discount", "Business", 2000).unwrap(), list(&["0.15", "0.05"]));
    assert_eq!(evaluate("OUTPUT ORDER", "Discount", "Business", 10).unwrap(), list(&["0.1", "0.05"]));
    assert_eq!(evaluate("COLLECT", "Discount", "Business", 2000).unwrap(), list(&["0.15", "0.05"]));
    assert_eq!(evaluate("COLLECT SUM", "Discount", "Business", 2000).unwrap(), decimal("0.20"));
    assert_eq!(evaluate("COLLECT MAX", "Discount", "Business", 2000).unwrap(), decimal("0.15"));
    assert_eq!(evaluate("COLLECT COUNT", "Discount", "Business", 2000).unwrap(), number(2));
    // No rule matches a customer of another type: null.
    assert_eq!(evaluate("FIRST", "Discount", "Government", 2000).unwrap(), Value::Null);
}

#[test]
fn a_decision_requires_another_and_calls_a_business_knowledge_model() {
    let definitions = dmn::import(&model("FIRST")).unwrap();
    let evaluation = definitions.evaluate("d_price", &inputs(&[("Customer Type", text("Business")), ("Order Amount", number(2000))])).unwrap();
    assert_eq!(evaluation.value, number(1700), "2 000 less 15 %");
    assert_eq!(evaluation.matched, [("Discount".to_string(), vec![2, 3])], "which rules of the required table matched");
    // By name as well as by id; and a decision given as an input is not evaluated again.
    let given = definitions.evaluate("Price", &inputs(&[("Order Amount", number(100)), ("Discount", Value::Number("0.5".parse().unwrap()))]));
    assert_eq!(given.unwrap().value, number(50));
}

#[test]
fn a_file_with_a_bad_expression_is_refused_with_its_decision_named() {
    let broken = model("FIRST").replace("amount * (1 - rate)", "amount * (1 - ");
    let problems = dmn::import(&broken).unwrap_err();
    assert_eq!(problems[0].code, "expression-invalid");
    assert_eq!(problems[0].element.as_deref(), Some("b_net"));
    assert_eq!(dmn::import("<definitions/>").unwrap_err()[0].code, "dmn-malformed");
}

/// A decision's result conforms to its item definition, or is null.
#[test]
fn results_conform_to_the_file_s_item_definitions() {
    let model = |expression: &str, type_ref: &str| {
        format!(
            r#"<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="t" name="Types" namespace="http://example.org">
  <itemDefinition name="tNumbers" isCollection="true"><typeRef>number</typeRef></itemDefinition>
  <itemDefinition name="tPerson"><itemComponent name="name"><typeRef>string</typeRef></itemComponent><itemComponent name="age"><typeRef>number</typeRef></itemComponent></itemDefinition>
  <decision id="d" name="D"><variable name="D" typeRef="{type_ref}"/><literalExpression><text>{expression}</text></literalExpression></decision>
</definitions>"#
        )
    };
    let result = |expression: &str, type_ref: &str| dmn::import(&model(expression, type_ref)).unwrap().evaluate("d", &BTreeMap::new()).unwrap().value;
    assert_eq!(result("[1, 2]", "tNumbers"), Value::List(vec![number(1), number(2)]));
    assert_eq!(result("[1, \"x\"]", "tNumbers"), Value::Null, "an item of another type");
    assert_eq!(result("3", "tNumbers"), Value::List(vec![number(3)]), "a single value stands for a list of one");
    assert_eq!(result("{name: \"Ada\"}", "tPerson"), Value::Null, "a component is missing");
    assert!(matches!(result("{name: \"Ada\", age: 36, extra: true}", "tPerson"), Value::Context(_)), "more is fine");
    assert_eq!(result("{name: \"Ada\", age: \"old\"}", "tPerson"), Value::Null, "a component of another type");
}
