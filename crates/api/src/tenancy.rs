//! Tenants at the handlers: which tenants a read looks into, which one a
//! write goes to, whether a row found by key may be shown. The store filters
//! by the tenants given here and the runtime refuses commands aimed at
//! another tenant's instance (`runtime::Audit::tenants`), so a handler never
//! compares tenants itself beyond these calls.

use store::Tenants;

use crate::access::{check_tenant, Principal};
use crate::error::ApiError;

/// The tenants a read looks into: the caller's (every one without
/// authentication), narrowed to `asked` when the request names one.
pub fn scope(caller: Option<&Principal>, asked: Option<String>) -> Result<Tenants, ApiError> {
    match asked {
        Some(tenant) => Ok(Some(vec![reached(caller, tenant)?])),
        None => Ok(caller.and_then(|c| c.tenants.clone())),
    }
}

/// The tenants a worker's poll takes jobs from: the caller's, narrowed to `asked` when given.
pub fn scope_of_list(
    caller: Option<&Principal>,
    asked: Option<Vec<String>>,
) -> Result<Tenants, ApiError> {
    match asked {
        Some(list) if list.is_empty() => Err(ApiError::new(
            "request-invalid",
            "tenants is empty: name at least one tenant, or leave it out for all of yours",
        )),
        Some(list) => list
            .into_iter()
            .map(|tenant| reached(caller, tenant))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        None => Ok(caller.and_then(|c| c.tenants.clone())),
    }
}

/// The one tenant a request about one named thing is in (a deployment, a
/// start, a message, a signal, a workflow by id): `asked`, else the caller's
/// only tenant, else the default tenant.
pub fn one(caller: Option<&Principal>, asked: Option<String>) -> Result<String, ApiError> {
    let tenant = asked.unwrap_or_else(|| match caller.and_then(|c| c.tenants.as_deref()) {
        Some([only]) => only.clone(),
        _ => store::DEFAULT_TENANT.to_string(),
    });
    reached(caller, tenant)
}

/// Whether the caller may see a row of `tenant`; one it may not is as good as absent.
pub fn sees(caller: Option<&Principal>, tenant: &str) -> bool {
    caller.is_none_or(|c| c.reaches(tenant))
}

/// `tenant`, if it is a tenant name the caller reaches.
fn reached(caller: Option<&Principal>, tenant: String) -> Result<String, ApiError> {
    check_tenant(&tenant).map_err(|message| ApiError::new("request-invalid", message))?;
    match caller {
        Some(caller) if !caller.reaches(&tenant) => Err(ApiError::new(
            "forbidden",
            format!("{}'s token does not reach tenant '{tenant}'", caller.name),
        )),
        _ => Ok(tenant),
    }
}
