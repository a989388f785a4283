//! The messages of the Zeebe gateway's gRPC service (package
//! `gateway_protocol`), written by hand from its wire contract: message
//! names, field names, tags and types, as Zeebe's clients send and read them.
//! Only what the served calls use; protobuf skips fields it does not know,
//! so a newer client's extra fields are read past.

#![allow(clippy::derive_partial_eq_without_eq)]

use prost::Message;

#[derive(Clone, PartialEq, Message)]
pub struct TopologyRequest {}

#[derive(Clone, PartialEq, Message)]
pub struct TopologyResponse {
    #[prost(message, repeated, tag = "1")]
    pub brokers: Vec<BrokerInfo>,
    #[prost(int32, tag = "2")]
    pub cluster_size: i32,
    #[prost(int32, tag = "3")]
    pub partitions_count: i32,
    #[prost(int32, tag = "4")]
    pub replication_factor: i32,
    #[prost(string, tag = "5")]
    pub gateway_version: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct BrokerInfo {
    #[prost(int32, tag = "1")]
    pub node_id: i32,
    #[prost(string, tag = "2")]
    pub host: String,
    #[prost(int32, tag = "3")]
    pub port: i32,
    #[prost(message, repeated, tag = "4")]
    pub partitions: Vec<Partition>,
    #[prost(string, tag = "5")]
    pub version: String,
}

/// Role 0 is the leader, health 0 healthy: the defaults are what Baton's one partition is.
#[derive(Clone, PartialEq, Message)]
pub struct Partition {
    #[prost(int32, tag = "1")]
    pub partition_id: i32,
    #[prost(int32, tag = "2")]
    pub role: i32,
    #[prost(int32, tag = "3")]
    pub health: i32,
}

#[derive(Clone, PartialEq, Message)]
pub struct DeployResourceRequest {
    #[prost(message, repeated, tag = "1")]
    pub resources: Vec<Resource>,
    #[prost(string, tag = "2")]
    pub tenant_id: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct Resource {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(bytes = "vec", tag = "2")]
    pub content: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
pub struct DeployResourceResponse {
    #[prost(int64, tag = "1")]
    pub key: i64,
    #[prost(message, repeated, tag = "2")]
    pub deployments: Vec<Deployment>,
    #[prost(string, tag = "3")]
    pub tenant_id: String,
}

/// One deployed thing: one of the four (the `Metadata` oneof).
#[derive(Clone, PartialEq, Message)]
pub struct Deployment {
    #[prost(message, optional, tag = "1")]
    pub process: Option<ProcessMetadata>,
    #[prost(message, optional, tag = "2")]
    pub decision: Option<DecisionMetadata>,
    #[prost(message, optional, tag = "3")]
    pub decision_requirements: Option<DecisionRequirementsMetadata>,
    #[prost(message, optional, tag = "4")]
    pub form: Option<FormMetadata>,
}

#[derive(Clone, PartialEq, Message)]
pub struct DecisionMetadata {
    #[prost(string, tag = "1")]
    pub dmn_decision_id: String,
    #[prost(string, tag = "2")]
    pub dmn_decision_name: String,
    #[prost(int32, tag = "3")]
    pub version: i32,
    #[prost(int64, tag = "4")]
    pub decision_key: i64,
    #[prost(string, tag = "5")]
    pub dmn_decision_requirements_id: String,
    #[prost(int64, tag = "6")]
    pub decision_requirements_key: i64,
    #[prost(string, tag = "7")]
    pub tenant_id: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct DecisionRequirementsMetadata {
    #[prost(string, tag = "1")]
    pub dmn_decision_requirements_id: String,
    #[prost(string, tag = "2")]
    pub dmn_decision_requirements_name: String,
    #[prost(int32, tag = "3")]
    pub version: i32,
    #[prost(int64, tag = "4")]
    pub decision_requirements_key: i64,
    #[prost(string, tag = "5")]
    pub resource_name: String,
    #[prost(string, tag = "6")]
    pub tenant_id: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct FormMetadata {
    #[prost(string, tag = "1")]
    pub form_id: String,
    #[prost(int32, tag = "2")]
    pub version: i32,
    #[prost(int64, tag = "3")]
    pub form_key: i64,
    #[prost(string, tag = "4")]
    pub resource_name: String,
    #[prost(string, tag = "5")]
    pub tenant_id: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct ProcessMetadata {
    #[prost(string, tag = "1")]
    pub bpmn_process_id: String,
    #[prost(int32, tag = "2")]
    pub version: i32,
    #[prost(int64, tag = "3")]
    pub process_definition_key: i64,
    #[prost(string, tag = "4")]
    pub resource_name: String,
    #[prost(string, tag = "5")]
    pub tenant_id: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct CreateProcessInstanceRequest {
    #[prost(int64, tag = "1")]
    pub process_definition_key: i64,
    #[prost(string, tag = "2")]
    pub bpmn_process_id: String,
    #[prost(int32, tag = "3")]
    pub version: i32,
    #[prost(string, tag = "4")]
    pub variables: String,
    #[prost(message, repeated, tag = "5")]
    pub start_instructions: Vec<StartInstruction>,
    #[prost(string, tag = "6")]
    pub tenant_id: String,
    #[prost(uint64, optional, tag = "7")]
    pub operation_reference: Option<u64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct StartInstruction {
    #[prost(string, tag = "1")]
    pub element_id: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct CreateProcessInstanceResponse {
    #[prost(int64, tag = "1")]
    pub process_definition_key: i64,
    #[prost(string, tag = "2")]
    pub bpmn_process_id: String,
    #[prost(int32, tag = "3")]
    pub version: i32,
    #[prost(int64, tag = "4")]
    pub process_instance_key: i64,
    #[prost(string, tag = "5")]
    pub tenant_id: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct CreateProcessInstanceWithResultRequest {
    #[prost(message, optional, tag = "1")]
    pub request: Option<CreateProcessInstanceRequest>,
    #[prost(int64, tag = "2")]
    pub request_timeout: i64,
    #[prost(string, repeated, tag = "3")]
    pub fetch_variables: Vec<String>,
}

#[derive(Clone, PartialEq, Message)]
pub struct CreateProcessInstanceWithResultResponse {
    #[prost(int64, tag = "1")]
    pub process_definition_key: i64,
    #[prost(string, tag = "2")]
    pub bpmn_process_id: String,
    #[prost(int32, tag = "3")]
    pub version: i32,
    #[prost(int64, tag = "4")]
    pub process_instance_key: i64,
    #[prost(string, tag = "5")]
    pub variables: String,
    #[prost(string, tag = "6")]
    pub tenant_id: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct CancelProcessInstanceRequest {
    #[prost(int64, tag = "1")]
    pub process_instance_key: i64,
    #[prost(uint64, optional, tag = "2")]
    pub operation_reference: Option<u64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ActivateJobsRequest {
    #[prost(string, tag = "1")]
    pub r#type: String,
    #[prost(string, tag = "2")]
    pub worker: String,
    #[prost(int64, tag = "3")]
    pub timeout: i64,
    #[prost(int32, tag = "4")]
    pub max_jobs_to_activate: i32,
    #[prost(string, repeated, tag = "5")]
    pub fetch_variable: Vec<String>,
    #[prost(int64, tag = "6")]
    pub request_timeout: i64,
    #[prost(string, repeated, tag = "7")]
    pub tenant_ids: Vec<String>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ActivateJobsResponse {
    #[prost(message, repeated, tag = "1")]
    pub jobs: Vec<ActivatedJob>,
}

#[derive(Clone, PartialEq, Message)]
pub struct StreamActivatedJobsRequest {
    #[prost(string, tag = "1")]
    pub r#type: String,
    #[prost(string, tag = "2")]
    pub worker: String,
    #[prost(int64, tag = "3")]
    pub timeout: i64,
    #[prost(string, repeated, tag = "5")]
    pub fetch_variable: Vec<String>,
    #[prost(string, repeated, tag = "6")]
    pub tenant_ids: Vec<String>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ActivatedJob {
    #[prost(int64, tag = "1")]
    pub key: i64,
    #[prost(string, tag = "2")]
    pub r#type: String,
    #[prost(int64, tag = "3")]
    pub process_instance_key: i64,
    #[prost(string, tag = "4")]
    pub bpmn_process_id: String,
    #[prost(int32, tag = "5")]
    pub process_definition_version: i32,
    #[prost(int64, tag = "6")]
    pub process_definition_key: i64,
    #[prost(string, tag = "7")]
    pub element_id: String,
    #[prost(int64, tag = "8")]
    pub element_instance_key: i64,
    /// A JSON object.
    #[prost(string, tag = "9")]
    pub custom_headers: String,
    #[prost(string, tag = "10")]
    pub worker: String,
    #[prost(int32, tag = "11")]
    pub retries: i32,
    #[prost(int64, tag = "12")]
    pub deadline: i64,
    /// A JSON object.
    #[prost(string, tag = "13")]
    pub variables: String,
    #[prost(string, tag = "14")]
    pub tenant_id: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct CompleteJobRequest {
    #[prost(int64, tag = "1")]
    pub job_key: i64,
    #[prost(string, tag = "2")]
    pub variables: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct FailJobRequest {
    #[prost(int64, tag = "1")]
    pub job_key: i64,
    #[prost(int32, tag = "2")]
    pub retries: i32,
    #[prost(string, tag = "3")]
    pub error_message: String,
    #[prost(int64, tag = "4")]
    pub retry_back_off: i64,
    #[prost(string, tag = "5")]
    pub variables: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct ThrowErrorRequest {
    #[prost(int64, tag = "1")]
    pub job_key: i64,
    #[prost(string, tag = "2")]
    pub error_code: String,
    #[prost(string, tag = "3")]
    pub error_message: String,
    #[prost(string, tag = "4")]
    pub variables: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct UpdateJobRetriesRequest {
    #[prost(int64, tag = "1")]
    pub job_key: i64,
    #[prost(int32, tag = "2")]
    pub retries: i32,
    #[prost(uint64, optional, tag = "3")]
    pub operation_reference: Option<u64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct UpdateJobTimeoutRequest {
    #[prost(int64, tag = "1")]
    pub job_key: i64,
    #[prost(int64, tag = "2")]
    pub timeout: i64,
    #[prost(uint64, optional, tag = "3")]
    pub operation_reference: Option<u64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct PublishMessageRequest {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub correlation_key: String,
    #[prost(int64, tag = "3")]
    pub time_to_live: i64,
    #[prost(string, tag = "4")]
    pub message_id: String,
    #[prost(string, tag = "5")]
    pub variables: String,
    #[prost(string, tag = "6")]
    pub tenant_id: String,
}

/// The answer of a publication or a broadcast: the record's key and tenant.
#[derive(Clone, PartialEq, Message)]
pub struct KeyResponse {
    #[prost(int64, tag = "1")]
    pub key: i64,
    #[prost(string, tag = "2")]
    pub tenant_id: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct BroadcastSignalRequest {
    #[prost(string, tag = "1")]
    pub signal_name: String,
    #[prost(string, tag = "2")]
    pub variables: String,
    #[prost(string, tag = "3")]
    pub tenant_id: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct SetVariablesRequest {
    #[prost(int64, tag = "1")]
    pub element_instance_key: i64,
    #[prost(string, tag = "2")]
    pub variables: String,
    #[prost(bool, tag = "3")]
    pub local: bool,
    #[prost(uint64, optional, tag = "4")]
    pub operation_reference: Option<u64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct SetVariablesResponse {
    #[prost(int64, tag = "1")]
    pub key: i64,
}

#[derive(Clone, PartialEq, Message)]
pub struct ResolveIncidentRequest {
    #[prost(int64, tag = "1")]
    pub incident_key: i64,
    #[prost(uint64, optional, tag = "2")]
    pub operation_reference: Option<u64>,
}

/// The empty answer of the calls that change something and return nothing.
#[derive(Clone, PartialEq, Message)]
pub struct Empty {}
