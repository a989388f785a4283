//! Bearer JWTs from an OpenID Connect issuer (Keycloak, Entra ID, Auth0, ...):
//! the signature checked against the issuer's keys (JWKS), `iss`, `aud`,
//! `exp` and `nbf` checked, and the holder's name, roles and groups read
//! from configurable claims.
//!
//! The keys come from a `fetch` function the server gives (only the `cli`
//! crate makes HTTP requests): they are cached, and fetched again when a token
//! names a key the cache does not have (the issuer rotated its keys), at most
//! once per [`REFETCH_AFTER`].

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::access::{Principal, Refusal, Role};

/// Fetches the issuer's key set (its JWKS document, as JSON).
pub type FetchKeys =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<Value, String>> + Send>> + Send + Sync>;

/// Least time between two fetches of the keys for unknown key ids.
pub const REFETCH_AFTER: Duration = Duration::from_secs(10);

/// Where the holder's name, roles, groups and tenants are in a token (dotted paths, such as `realm_access.roles`).
#[derive(Clone, Debug)]
pub struct Claims {
    pub name: String,
    pub roles: String,
    pub groups: String,
    pub tenants: String,
}

impl Default for Claims {
    fn default() -> Claims {
        Claims {
            name: "preferred_username".into(),
            roles: "roles".into(),
            groups: "groups".into(),
            tenants: "tenants".into(),
        }
    }
}

/// How the console signs a user in at the issuer: the authorization-code
/// flow with PKCE, as a public client (no secret in a page).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignIn {
    pub client_id: String,
    pub scopes: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
}

impl SignIn {
    /// The endpoints from the issuer's discovery document.
    pub fn from_discovery(client_id: String, scopes: String, discovery: &Value) -> Result<SignIn, String> {
        let endpoint = |name: &str| {
            discovery[name]
                .as_str()
                .filter(|url| url.starts_with("https://") || url.starts_with("http://"))
                .map(str::to_string)
                .ok_or_else(|| format!("the issuer's discovery document names no {name}"))
        };
        Ok(SignIn { client_id, scopes, authorization_endpoint: endpoint("authorization_endpoint")?, token_endpoint: endpoint("token_endpoint")? })
    }

    /// The origin the console's page sends the code to (its Content-Security-Policy allows it).
    pub fn token_origin(&self) -> Option<String> {
        let (scheme, rest) = self.token_endpoint.split_once("://")?;
        let host = rest.split(['/', '?', '#']).next()?;
        Some(format!("{scheme}://{host}"))
    }
}

/// An issuer and what its tokens must say.
pub struct Oidc {
    issuer: String,
    audience: String,
    claims: Claims,
    keys: RwLock<JwkSet>,
    fetch: FetchKeys,
    fetched: Mutex<Option<Instant>>,
    /// Set when the console may sign users in at the issuer.
    pub sign_in: Option<SignIn>,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Oidc({} for {})", self.issuer, self.audience)
    }
}

fn key_set(document: Value) -> Result<JwkSet, String> {
    serde_json::from_value(document)
        .map_err(|e| format!("the issuer's key set (JWKS) is not one: {e}"))
}

/// A claim at a dotted path.
fn claim<'c>(claims: &'c Value, path: &str) -> Option<&'c Value> {
    path.split('.')
        .try_fold(claims, |value, part| value.get(part))
}

/// A claim as a list of strings (a single string counts as a list of one).
fn strings(claims: &Value, path: &str) -> Vec<String> {
    match claim(claims, path) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        Some(Value::String(one)) => vec![one.clone()],
        _ => Vec::new(),
    }
}

impl Oidc {
    /// Fetches the issuer's keys once, so that a server with an unreachable issuer does not start.
    pub async fn connect(
        issuer: String,
        audience: String,
        claims: Claims,
        fetch: FetchKeys,
    ) -> Result<Oidc, String> {
        let keys = key_set(fetch().await?)?;
        // The first unknown key id may fetch at once: rotation can happen right after start.
        Ok(Oidc {
            issuer,
            audience,
            claims,
            keys: RwLock::new(keys),
            fetch,
            fetched: Mutex::new(None),
            sign_in: None,
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    fn key(&self, kid: &str) -> Option<DecodingKey> {
        let keys = self
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        keys.find(kid)
            .and_then(|jwk| DecodingKey::from_jwk(jwk).ok())
    }

    /// Fetches the keys again, unless that was done a moment ago.
    async fn refetch(&self) {
        {
            let mut fetched = self
                .fetched
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if fetched.is_some_and(|at| at.elapsed() < REFETCH_AFTER) {
                return;
            }
            *fetched = Some(Instant::now());
        }
        if let Ok(keys) = (self.fetch)().await.and_then(key_set) {
            *self
                .keys
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = keys;
        }
    }

    /// The principal a bearer JWT stands for.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, Refusal> {
        let token = crate::access::bearer(authorization)?;
        let header = jsonwebtoken::decode_header(&token).map_err(|_| Refusal::Unknown)?;
        // Keys from the issuer only: never a shared secret (HS*), which a holder of the public key could forge.
        if matches!(
            header.alg,
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
        ) {
            return Err(Refusal::Unknown);
        }
        let kid = header.kid.ok_or(Refusal::Unknown)?;
        let key = match self.key(&kid) {
            Some(key) => key,
            None => {
                self.refetch().await;
                self.key(&kid).ok_or(Refusal::Unknown)?
            }
        };
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Value>(&token, &key, &validation).map_err(|e| match e
            .kind()
        {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => Refusal::Expired,
            _ => Refusal::Unknown,
        })?;
        let claims = data.claims;
        let name = claim(&claims, &self.claims.name)
            .and_then(Value::as_str)
            .or_else(|| claims["sub"].as_str())
            .unwrap_or("")
            .to_string();
        let roles: Vec<Role> = strings(&claims, &self.claims.roles)
            .iter()
            .filter_map(|r| Role::parse(r))
            .collect();
        // Without the claim, the default tenant; `*` in it, every tenant.
        let tenants = crate::access::tenants_reached(
            roles.contains(&Role::Admin),
            &strings(&claims, &self.claims.tenants),
        );
        Ok(Principal {
            name,
            roles,
            job_types: None,
            workflows: None,
            groups: strings(&claims, &self.claims.groups),
            hide_variables: false,
            tenants,
        })
    }
}
