//! The Zeebe gateway (gRPC) with tokens on: who may call what, and what is not served.

use std::sync::Arc;

use api::access::{new_token, TokenRequest, Tokens};
use api::zeebe::wire::{DeployResourceRequest, Empty, TopologyRequest, TopologyResponse};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::Code;

use super::{App, T0};

async fn call<Req: prost::Message + Send + Sync + 'static, Resp: prost::Message + Default + Send + Sync + 'static>(
    address: std::net::SocketAddr,
    method: &'static str,
    request: Req,
    token: Option<&str>,
) -> Result<Resp, tonic::Status> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}")).unwrap().connect().await.unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let mut request = tonic::Request::new(request);
    if let Some(token) = token {
        request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    let path = PathAndQuery::from_static(method);
    grpc.unary(request, path, tonic_prost::ProstCodec::default()).await.map(tonic::Response::into_inner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_checks_tokens_and_roles_and_names_what_it_does_not_serve() {
    let app = App::new();
    let token = |name: &str, role: &str| new_token(TokenRequest { name: name.into(), roles: vec![role.into()], ..TokenRequest::default() }, T0).unwrap();
    let ((viewer, viewer_row), (developer, developer_row)) = (token("watcher", "viewer"), token("builder", "developer"));
    let tokens = Arc::new(Tokens::default());
    tokens.replace(vec![viewer_row, developer_row]);
    let security = api::guard::Security { tokens: Some(tokens), ..api::guard::Security::default() };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(api::zeebe::serve(listener, app.service.as_ref().unwrap().handle.clone(), security, async move {
        let _ = stopped.await;
    }));

    let topology = "/gateway_protocol.Gateway/Topology";
    let refused = call::<_, TopologyResponse>(address, topology, TopologyRequest {}, None).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    let answer: TopologyResponse = call(address, topology, TopologyRequest {}, Some(&viewer)).await.unwrap();
    assert_eq!((answer.cluster_size, answer.partitions_count), (1, 1));

    let deploy = "/gateway_protocol.Gateway/DeployResource";
    let nothing = DeployResourceRequest { resources: Vec::new(), tenant_id: String::new() };
    let refused = call::<_, Empty>(address, deploy, nothing.clone(), Some(&viewer)).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "a viewer may not deploy: {refused:?}");
    let invalid = call::<_, Empty>(address, deploy, nothing, Some(&developer)).await.unwrap_err();
    assert_eq!(invalid.code(), Code::InvalidArgument, "a developer may, and nothing is not a deployment: {invalid:?}");

    let unserved = call::<_, Empty>(address, "/gateway_protocol.Gateway/MigrateProcessInstance", Empty {}, Some(&developer)).await.unwrap_err();
    assert_eq!(unserved.code(), Code::Unimplemented);
    assert!(unserved.message().contains("MigrateProcessInstance"), "{}", unserved.message());

    let _ = stop.send(());
    served.await.unwrap().unwrap();
}
