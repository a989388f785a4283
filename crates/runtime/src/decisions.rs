//! DMN decisions deployed beside BPMN: versions per decision id, each file
//! compiled once (at deployment, or when first needed after a start), and evaluated for business rule
//! tasks and `POST /v1/decisions/{id}/evaluate`. Evaluation is pure, so a
//! business rule task's outcome is part of the command that reached it.

use std::collections::BTreeMap;
use std::sync::Arc;

use engine::{DecisionOutcome, DecisionRef, Variables};
use store::{DecisionRow, Write, WriteTxn};

use crate::model::CompiledOnce;
use crate::Error;

/// Whether a deployed file is DMN: Camunda Modeler saves decisions as `*.dmn`.
pub fn is_dmn_file(name: &str) -> bool {
    name.to_ascii_lowercase().ends_with(".dmn")
}

/// One deployed version of a decision.
#[derive(Clone)]
pub struct DeployedDecision {
    pub decision_id: String,
    pub version: u32,
    pub deployment: u64,
    /// Its file, compiled the first time one of its decisions is needed.
    file: Arc<CompiledOnce<dmn::Definitions>>,
}

impl DeployedDecision {
    /// The decision's file, compiled (now, if nothing needed it before). An
    /// error says which decision no longer compiles and why.
    pub fn definitions(&self) -> Result<Arc<dmn::Definitions>, String> {
        self.file.get(|xml| {
            dmn::import(xml).map_err(|problems| {
                let why = problems.first().map_or(String::new(), |d| format!(" ({}: {})", d.code, d.message));
                format!("the deployed decision {} v{} no longer compiles{why}", self.decision_id, self.version)
            })
        })
    }
}

/// Every deployed decision by tenant and decision id, versions in order.
#[derive(Clone, Default)]
pub struct Decisions(BTreeMap<(String, String), Vec<DeployedDecision>>);

impl Decisions {
    /// Reads every deployed decision; each file is compiled when one of its
    /// decisions is first needed, once however many decisions it holds.
    pub fn load(tx: &mut dyn store::ReadTxn) -> Result<(Decisions, u64), Error> {
        let mut decisions = Decisions::default();
        let mut files: BTreeMap<(u64, String), Arc<CompiledOnce<dmn::Definitions>>> = BTreeMap::new();
        let mut last_deployment = 0;
        for row in tx.decisions(&None, None)? {
            last_deployment = last_deployment.max(row.deployment);
            // A file's decisions are stored with the same deployment and XML.
            let file = files
                .entry((row.deployment, row.xml))
                .or_insert_with_key(|(_, xml)| Arc::new(CompiledOnce::stored(Arc::from(xml.as_str()))))
                .clone();
            decisions.add(&row.tenant, DeployedDecision { decision_id: row.decision_id, version: row.version, deployment: row.deployment, file });
        }
        Ok((decisions, last_deployment))
    }

    fn add(&mut self, tenant: &str, decision: DeployedDecision) {
        self.0.entry((tenant.to_string(), decision.decision_id.clone())).or_default().push(decision);
    }

    pub fn version(&self, tenant: &str, decision_id: &str, version: u32) -> Option<&DeployedDecision> {
        let versions = self.0.get(&(tenant.to_string(), decision_id.to_string()))?;
        versions.binary_search_by_key(&version, |d| d.version).ok().map(|at| &versions[at])
    }

    pub fn latest(&self, tenant: &str, decision_id: &str) -> Option<&DeployedDecision> {
        self.0.get(&(tenant.to_string(), decision_id.to_string()))?.last()
    }

    /// The version a business rule task's binding picks: the latest, the
    /// one deployed with the calling workflow, or the latest with the version tag.
    pub fn pick(&self, tenant: &str, decision_id: &str, binding: &bpmn::Binding, caller_deployment: u64) -> Result<&DeployedDecision, String> {
        let versions = self.0.get(&(tenant.to_string(), decision_id.to_string()));
        // A version that no longer compiles has no tag to match.
        let tag_of = |d: &DeployedDecision| d.definitions().ok()?.decisions.iter().find(|x| x.id == decision_id).and_then(|x| x.version_tag.clone());
        let found = versions.and_then(|v| match binding {
            bpmn::Binding::VersionTag(tag) => v.iter().rev().find(|d| tag_of(d).as_deref() == Some(tag.as_str())),
            other => other.pick(v, caller_deployment, |d| d.deployment, |_| None),
        });
        found.ok_or_else(|| match binding {
            bpmn::Binding::Deployment => format!("decision '{decision_id}' was not deployed with this workflow (bindingType=\"deployment\") to tenant {tenant}"),
            bpmn::Binding::VersionTag(tag) => format!("no version of decision '{decision_id}' in tenant {tenant} has version tag '{tag}'"),
            bpmn::Binding::Latest => format!("decision '{decision_id}' is not deployed to tenant {tenant}"),
        })
    }

    /// Validates DMN files and writes a version of each decision whose file
    /// changed; the decisions with their version and whether it is new.
    pub fn deploy(
        &mut self,
        tx: &mut dyn WriteTxn,
        tenant: &str,
        files: &[(String, Arc<dmn::Definitions>, String)],
        deployment: u64,
        now: i64,
    ) -> Result<Vec<(String, u32, bool)>, Error> {
        let mut result = Vec::new();
        for (resource, definitions, xml) in files {
            let file = Arc::new(CompiledOnce::compiled(Arc::from(xml.as_str()), definitions.clone()));
            for decision in &definitions.decisions {
                let versions = tx.decisions(&Some(vec![tenant.to_string()]), Some(&decision.id))?;
                if let Some(latest) = versions.last().filter(|d| &d.xml == xml) {
                    result.push((decision.id.clone(), latest.version, false));
                    continue;
                }
                let version = versions.last().map_or(1, |d| d.version + 1);
                tx.apply(Write::PutDecision(DecisionRow {
                    tenant: tenant.to_string(),
                    decision_id: decision.id.clone(),
                    version,
                    deployment,
                    name: decision.name.clone(),
                    definitions_id: definitions.id.clone(),
                    resource: resource.clone(),
                    xml: xml.clone(),
                    deployed_at: now,
                }))?;
                self.add(tenant, DeployedDecision { decision_id: decision.id.clone(), version, deployment, file: file.clone() });
                result.push((decision.id.clone(), version, true));
            }
        }
        Ok(result)
    }
}

/// Evaluates a deployed decision with variables (JSON, as instances hold
/// them): its result as JSON, with which decision, version and rules.
/// `now` is the step's time, which `now()` and `today()` give.
pub fn evaluate(decision: &DeployedDecision, variables: &Variables, now: i64) -> Result<DecisionOutcome, String> {
    let inputs: BTreeMap<String, feel::Value> = variables.iter().map(|(k, v)| (k.clone(), feel::Value::from_json(v))).collect();
    let evaluation = decision.definitions()?.evaluate_at(&decision.decision_id, &inputs, Some(now))?;
    let value = evaluation.value.to_json().map_err(|e| format!("decision '{}': {e}", decision.decision_id))?;
    Ok(DecisionOutcome {
        value,
        decision: DecisionRef { decision_id: decision.decision_id.clone(), version: decision.version, matched: evaluation.matched },
    })
}
